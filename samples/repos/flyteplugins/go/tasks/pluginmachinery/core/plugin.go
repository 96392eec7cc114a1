// Package core defines the interface between the execution engine and task plugins.
package core

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// TaskTemplate is the part of a task definition plugins read.
type TaskTemplate struct {
	ID         string
	Type       string
	Image      string
	Args       []string
	Env        map[string]string
	Resources  map[string]string
	Interrupts bool
}

// TaskContext gives a plugin what it needs for one attempt of one task.
type TaskContext interface {
	Template() *TaskTemplate
	// ExecutionID is unique per attempt; plugins use it to name the resources they create.
	ExecutionID() string
	// State returns the bytes the plugin saved on its previous call, or nil on the first one.
	State() []byte
	SaveState(state []byte)
}

// Plugin runs tasks of the types it declares.
type Plugin interface {
	ID() string
	TaskTypes() []string
	// Handle starts the task or checks on it. It must be idempotent.
	Handle(ctx context.Context, tctx TaskContext) (PhaseInfo, error)
	// Abort stops a running task; it is called when the workflow is aborted.
	Abort(ctx context.Context, tctx TaskContext) error
	// Finalize releases what the task held, after success, failure or abort.
	Finalize(ctx context.Context, tctx TaskContext) error
}

// Registry maps task types to plugins.
type Registry struct {
	mu      sync.RWMutex
	byType  map[string]Plugin
	plugins map[string]Plugin
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byType: map[string]Plugin{}, plugins: map[string]Plugin{}}
}

// Register adds p; two plugins may not claim the same task type.
func (r *Registry) Register(p Plugin) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, exists := r.plugins[p.ID()]; exists {
		return fmt.Errorf("plugin %q is already registered", p.ID())
	}
	for _, taskType := range p.TaskTypes() {
		if other, taken := r.byType[taskType]; taken {
			return fmt.Errorf("task type %q is handled by %q already; %q cannot claim it", taskType, other.ID(), p.ID())
		}
	}
	r.plugins[p.ID()] = p
	for _, taskType := range p.TaskTypes() {
		r.byType[taskType] = p
	}
	return nil
}

// Lookup returns the plugin for taskType.
func (r *Registry) Lookup(taskType string) (Plugin, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.byType[taskType]
	if !ok {
		return nil, fmt.Errorf("no plugin handles task type %q (known: %v)", taskType, r.taskTypesLocked())
	}
	return p, nil
}

func (r *Registry) taskTypesLocked() []string {
	types := make([]string, 0, len(r.byType))
	for t := range r.byType {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}
