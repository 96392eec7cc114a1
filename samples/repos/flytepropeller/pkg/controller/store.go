package controller

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/flyteorg/flytepropeller/pkg/controller/nodes"
)

// InMemoryStore keeps workflows in a map; it is used by tests and by the single-binary sandbox.
type InMemoryStore struct {
	mu        sync.Mutex
	workflows map[string]*nodes.Workflow
}

// NewInMemoryStore returns an empty store.
func NewInMemoryStore() *InMemoryStore {
	return &InMemoryStore{workflows: map[string]*nodes.Workflow{}}
}

// Get returns a copy, so callers cannot change stored state without Update.
func (s *InMemoryStore) Get(_ context.Context, key string) (*nodes.Workflow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wf, ok := s.workflows[key]
	if !ok {
		return nil, fmt.Errorf("workflow %q not found", key)
	}
	return wf.DeepCopy(), nil
}

// Update stores wf if its resource version matches the stored one and bumps the version.
func (s *InMemoryStore) Update(_ context.Context, wf *nodes.Workflow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if current, ok := s.workflows[wf.Key()]; ok && current.ResourceVersion != wf.ResourceVersion {
		return ErrConflict
	}
	stored := wf.DeepCopy()
	stored.ResourceVersion++
	s.workflows[wf.Key()] = stored
	wf.ResourceVersion = stored.ResourceVersion
	return nil
}

// List returns the keys of all stored workflows, sorted.
func (s *InMemoryStore) List(_ context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.workflows))
	for key := range s.workflows {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys, nil
}
