// Package nodes advances the nodes of a workflow through their phases.
package nodes

import (
	"context"
	"fmt"
	"time"
)

// NodePhase is where a node is in its life cycle.
type NodePhase int

const (
	NodeNotYetStarted NodePhase = iota
	NodeQueued
	NodeRunning
	NodeRetryableFailure
	NodeSucceeded
	NodeFailed
	NodeSkipped
)

func (p NodePhase) String() string {
	return [...]string{"NotYetStarted", "Queued", "Running", "RetryableFailure", "Succeeded", "Failed", "Skipped"}[p]
}

// IsTerminal is true for phases a node never leaves.
func (p NodePhase) IsTerminal() bool {
	return p == NodeSucceeded || p == NodeFailed || p == NodeSkipped
}

// WorkflowPhase is the phase of a whole workflow.
type WorkflowPhase int

const (
	WorkflowRunning WorkflowPhase = iota
	WorkflowSucceeded
	WorkflowFailed
)

// IsTerminal is true once the workflow succeeded or failed.
func (p WorkflowPhase) IsTerminal() bool {
	return p != WorkflowRunning
}

// Node is one step of a workflow and its observed status.
type Node struct {
	ID         string
	TaskType   string
	Upstream   []string
	MaxRetries int
	Phase      NodePhase
	Attempts   int
	StartedAt  time.Time
	Message    string
}

// Workflow is the part of the FlyteWorkflow resource the executor reads and writes.
type Workflow struct {
	Namespace       string
	Name            string
	Nodes           map[string]*Node
	Phase           WorkflowPhase
	Message         string
	SystemFailures  int
	ResourceVersion int
	LastUpdated     time.Time
}

// Key is the queue key, namespace/name.
func (w *Workflow) Key() string {
	return w.Namespace + "/" + w.Name
}

// DeepCopy returns a copy that shares no nodes with w.
func (w *Workflow) DeepCopy() *Workflow {
	out := *w
	out.Nodes = make(map[string]*Node, len(w.Nodes))
	for id, n := range w.Nodes {
		copied := *n
		copied.Upstream = append([]string(nil), n.Upstream...)
		out.Nodes[id] = &copied
	}
	return &out
}

// TaskHandler runs the task behind a node; plugins implement it per task type.
type TaskHandler interface {
	// Handle starts or checks the task and returns the node's new phase.
	Handle(ctx context.Context, node *Node) (NodePhase, error)
}

// Executor advances the nodes of workflows using the registered task handlers.
type Executor struct {
	handlers       map[string]TaskHandler
	parallelismLimit int
}

// NewExecutor returns an executor with no handlers; parallelismLimit 0 means unlimited.
func NewExecutor(parallelismLimit int) *Executor {
	return &Executor{handlers: map[string]TaskHandler{}, parallelismLimit: parallelismLimit}
}

// Register makes h run all nodes of taskType.
func (e *Executor) Register(taskType string, h TaskHandler) {
	e.handlers[taskType] = h
}

// Advance runs one round over all nodes and reports whether any status changed.
func (e *Executor) Advance(ctx context.Context, wf *Workflow) (bool, error) {
	changed := false
	inFlight := 0
	for _, n := range wf.Nodes {
		if n.Phase == NodeRunning || n.Phase == NodeQueued {
			inFlight++
		}
	}
	for _, id := range sortedIDs(wf.Nodes) {
		node := wf.Nodes[id]
		if node.Phase.IsTerminal() {
			continue
		}
		ready, blocked := upstreamState(wf, node)
		if blocked {
			node.Phase = NodeSkipped
			node.Message = "skipped because an upstream node did not succeed"
			changed = true
			continue
		}
		if !ready {
			continue
		}
		if node.Phase == NodeNotYetStarted {
			if e.parallelismLimit > 0 && inFlight >= e.parallelismLimit {
				continue
			}
			inFlight++
		}
		before := node.Phase
		if err := e.handle(ctx, node); err != nil {
			return changed, fmt.Errorf("node %s: %w", node.ID, err)
		}
		changed = changed || node.Phase != before
	}
	if phase := workflowPhase(wf); phase != wf.Phase {
		wf.Phase = phase
		changed = true
	}
	return changed, nil
}

func (e *Executor) handle(ctx context.Context, node *Node) error {
	handler, ok := e.handlers[node.TaskType]
	if !ok {
		return fmt.Errorf("no handler registered for task type %q", node.TaskType)
	}
	if node.Phase == NodeNotYetStarted || node.Phase == NodeRetryableFailure {
		node.Attempts++
		node.StartedAt = time.Now()
	}
	phase, err := handler.Handle(ctx, node)
	if err != nil {
		return err
	}
	if phase == NodeRetryableFailure && node.Attempts > node.MaxRetries {
		// No retries left: record the failure as permanent.
		phase = NodeFailed
		node.Message = fmt.Sprintf("failed after %d attempts", node.Attempts)
	}
	node.Phase = phase
	return nil
}

// upstreamState says whether all upstream nodes succeeded, and whether any of them can never succeed.
func upstreamState(wf *Workflow, node *Node) (ready bool, blocked bool) {
	ready = true
	for _, up := range node.Upstream {
		switch wf.Nodes[up].Phase {
		case NodeSucceeded:
		case NodeFailed, NodeSkipped:
			return false, true
		default:
			ready = false
		}
	}
	return ready, false
}

func workflowPhase(wf *Workflow) WorkflowPhase {
	done := true
	for _, n := range wf.Nodes {
		if n.Phase == NodeFailed {
			return WorkflowFailed
		}
		done = done && n.Phase.IsTerminal()
	}
	if done {
		return WorkflowSucceeded
	}
	return WorkflowRunning
}
