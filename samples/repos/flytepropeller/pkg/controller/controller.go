// Package controller runs the reconcile loop that drives workflows to completion.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/flyteorg/flytepropeller/pkg/controller/config"
	"github.com/flyteorg/flytepropeller/pkg/controller/nodes"
)

// ErrConflict is returned by a Store when the workflow changed since it was read.
var ErrConflict = errors.New("workflow was modified concurrently")

// Store loads and saves workflows; in a cluster it is backed by the Kubernetes API.
type Store interface {
	Get(ctx context.Context, key string) (*nodes.Workflow, error)
	Update(ctx context.Context, wf *nodes.Workflow) error
	List(ctx context.Context) ([]string, error)
}

// Controller owns the work queue and the workers that drain it.
type Controller struct {
	cfg      *config.Config
	store    Store
	executor *nodes.Executor
	queue    *WorkQueue
}

// New wires a controller from its config and store.
func New(cfg *config.Config, store Store) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	return &Controller{
		cfg:      cfg,
		store:    store,
		executor: nodes.NewExecutor(cfg.MaxParallelism),
		queue:    NewWorkQueue(),
	}, nil
}

// Enqueue asks for a workflow to be reconciled as soon as a worker is free.
func (c *Controller) Enqueue(key string) {
	c.queue.Add(key)
}

// Run starts the workers and blocks until ctx is cancelled.
func (c *Controller) Run(ctx context.Context) error {
	keys, err := c.store.List(ctx)
	if err != nil {
		return fmt.Errorf("listing workflows: %w", err)
	}
	for _, key := range keys {
		c.queue.Add(key)
	}

	var wg sync.WaitGroup
	for i := 0; i < c.cfg.Workers; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			c.worker(ctx, id)
		}(i)
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) worker(ctx context.Context, id int) {
	for {
		key, ok := c.queue.Get()
		if !ok {
			return
		}
		requeue, err := c.reconcile(ctx, key)
		c.queue.Done(key)
		switch {
		case errors.Is(err, ErrConflict):
			// Someone else wrote a newer version; reconcile again from that one right away.
			c.queue.Add(key)
		case err != nil:
			log.Printf("worker %d: reconciling %s: %v", id, key, err)
			c.queue.AddAfter(key, c.cfg.DownstreamEval.Duration)
		case requeue:
			c.queue.AddAfter(key, c.cfg.DownstreamEval.Duration)
		}
	}
}

// reconcile advances one workflow by one round and reports whether it needs another round later.
func (c *Controller) reconcile(ctx context.Context, key string) (bool, error) {
	wf, err := c.store.Get(ctx, key)
	if err != nil {
		return false, err
	}
	if wf.Phase.IsTerminal() {
		return false, nil
	}
	if wf.SystemFailures > c.cfg.MaxWorkflowRetries {
		wf.Phase = nodes.WorkflowFailed
		wf.Message = fmt.Sprintf("gave up after %d system failures", wf.SystemFailures)
		return false, c.store.Update(ctx, wf)
	}

	changed, err := c.executor.Advance(ctx, wf)
	if err != nil {
		wf.SystemFailures++
		if updateErr := c.store.Update(ctx, wf); updateErr != nil {
			return false, updateErr
		}
		return true, err
	}
	if changed {
		wf.LastUpdated = time.Now()
		if err := c.store.Update(ctx, wf); err != nil {
			return false, err
		}
	}
	return !wf.Phase.IsTerminal(), nil
}

// WorkQueue hands each key to one worker at a time and coalesces repeated adds of the same key.
type WorkQueue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []string
	queued     map[string]bool
	processing map[string]bool
	// dirty marks keys added while being processed: they go back on the queue when Done is called.
	dirty    map[string]bool
	shutdown bool
}

// NewWorkQueue returns an empty queue.
func NewWorkQueue() *WorkQueue {
	q := &WorkQueue{queued: map[string]bool{}, processing: map[string]bool{}, dirty: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key unless it is already waiting.
func (q *WorkQueue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown || q.queued[key] {
		return
	}
	if q.processing[key] {
		q.dirty[key] = true
		return
	}
	q.queued[key] = true
	q.order = append(q.order, key)
	q.cond.Signal()
}

// AddAfter queues key once delay has passed.
func (q *WorkQueue) AddAfter(key string, delay time.Duration) {
	time.AfterFunc(delay, func() { q.Add(key) })
}

// Get blocks until a key is available; ok is false once the queue is shut down and drained.
func (q *WorkQueue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.order) == 0 {
		return "", false
	}
	key, q.order = q.order[0], q.order[1:]
	delete(q.queued, key)
	q.processing[key] = true
	return key, true
}

// Done marks key as processed, re-queueing it if it was added in the meantime.
func (q *WorkQueue) Done(key string) {
	q.mu.Lock()
	delete(q.processing, key)
	requeue := q.dirty[key]
	delete(q.dirty, key)
	q.mu.Unlock()
	if requeue {
		q.Add(key)
	}
}

// Len is the number of keys waiting.
func (q *WorkQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// ShutDown wakes all waiting workers; Get returns ok=false once the queue is empty.
func (q *WorkQueue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	q.cond.Broadcast()
}
