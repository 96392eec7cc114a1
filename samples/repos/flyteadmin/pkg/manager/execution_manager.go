// Package manager holds the business logic behind the admin API.
package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// ErrNotFound is returned when the requested entity does not exist.
var ErrNotFound = errors.New("not found")

// ErrAlreadyExists is returned when an execution name is reused.
var ErrAlreadyExists = errors.New("already exists")

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// ExecutionID identifies one execution.
type ExecutionID struct {
	Project string `json:"project"`
	Domain  string `json:"domain"`
	Name    string `json:"name"`
}

func (id ExecutionID) String() string {
	return id.Project + "/" + id.Domain + "/" + id.Name
}

// Execution is the stored record of one run.
type Execution struct {
	ID         ExecutionID       `json:"id"`
	LaunchPlan string            `json:"launch_plan"`
	Inputs     map[string]string `json:"inputs"`
	Phase      string            `json:"phase"`
	CreatedAt  time.Time         `json:"created_at"`
}

// CreateRequest asks for a new execution; Name may be empty to get a generated one.
type CreateRequest struct {
	Project    string            `json:"project"`
	Domain     string            `json:"domain"`
	Name       string            `json:"name"`
	LaunchPlan string            `json:"launch_plan"`
	Inputs     map[string]string `json:"inputs"`
}

// ExecutionManager creates and looks up executions.
type ExecutionManager struct {
	mu         sync.Mutex
	executions map[ExecutionID]*Execution
	domains    map[string]bool
	now        func() time.Time
}

// NewExecutionManager returns a manager that accepts the given domains.
func NewExecutionManager(domains []string, now func() time.Time) *ExecutionManager {
	allowed := map[string]bool{}
	for _, d := range domains {
		allowed[d] = true
	}
	return &ExecutionManager{executions: map[ExecutionID]*Execution{}, domains: allowed, now: now}
}

// Create validates the request and stores a queued execution.
func (m *ExecutionManager) Create(_ context.Context, req CreateRequest) (*Execution, error) {
	if req.Project == "" || req.LaunchPlan == "" {
		return nil, fmt.Errorf("project and launch_plan are required")
	}
	if !m.domains[req.Domain] {
		return nil, fmt.Errorf("unknown domain %q", req.Domain)
	}
	name := req.Name
	if name == "" {
		name = generateName(req, m.now())
	}
	if !namePattern.MatchString(name) {
		return nil, fmt.Errorf("execution name %q must match %s", name, namePattern)
	}
	id := ExecutionID{Project: req.Project, Domain: req.Domain, Name: name}

	m.mu.Lock()
	defer m.mu.Unlock()
	if _, exists := m.executions[id]; exists {
		return nil, fmt.Errorf("execution %s: %w", id, ErrAlreadyExists)
	}
	exec := &Execution{ID: id, LaunchPlan: req.LaunchPlan, Inputs: req.Inputs, Phase: "QUEUED", CreatedAt: m.now()}
	m.executions[id] = exec
	return exec, nil
}

// Get returns one execution.
func (m *ExecutionManager) Get(_ context.Context, id ExecutionID) (*Execution, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	exec, ok := m.executions[id]
	if !ok {
		return nil, fmt.Errorf("execution %s: %w", id, ErrNotFound)
	}
	return exec, nil
}

// generateName derives a short name from the request and time, so retried requests within the
// same second get the same name and are rejected as duplicates instead of launching twice.
func generateName(req CreateRequest, now time.Time) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%s/%d", req.Project, req.Domain, req.LaunchPlan, now.Unix())))
	return "f" + hex.EncodeToString(sum[:])[:19]
}
