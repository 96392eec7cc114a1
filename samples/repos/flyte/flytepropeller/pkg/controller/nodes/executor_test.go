package nodes

import (
	"context"
	"errors"
	"testing"
)

// scriptedHandler returns the phases it was given, one per call, per node.
type scriptedHandler struct {
	script map[string][]NodePhase
	calls  map[string]int
}

func newScriptedHandler(script map[string][]NodePhase) *scriptedHandler {
	return &scriptedHandler{script: script, calls: map[string]int{}}
}

func (h *scriptedHandler) Handle(_ context.Context, node *Node) (NodePhase, error) {
	phases := h.script[node.ID]
	i := h.calls[node.ID]
	h.calls[node.ID]++
	if i >= len(phases) {
		return NodeRunning, nil
	}
	return phases[i], nil
}

func chain() *Workflow {
	return &Workflow{
		Namespace: "flytesnacks-development",
		Name:      "wf-abc123",
		Nodes: map[string]*Node{
			"n0": {ID: "n0", TaskType: "python-task"},
			"n1": {ID: "n1", TaskType: "python-task", Upstream: []string{"n0"}, MaxRetries: 1},
		},
	}
}

func TestAdvanceRunsNodesInDependencyOrder(t *testing.T) {
	e := NewExecutor(0)
	e.Register("python-task", newScriptedHandler(map[string][]NodePhase{
		"n0": {NodeSucceeded},
		"n1": {NodeSucceeded},
	}))
	wf := chain()

	if _, err := e.Advance(context.Background(), wf); err != nil {
		t.Fatal(err)
	}
	if wf.Nodes["n0"].Phase != NodeSucceeded {
		t.Fatalf("n0: got %v, want Succeeded", wf.Nodes["n0"].Phase)
	}
	if wf.Phase != WorkflowSucceeded {
		t.Fatalf("workflow: got %v, want succeeded (n1 runs in the same round once n0 is done)", wf.Phase)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	e := NewExecutor(0)
	e.Register("python-task", newScriptedHandler(map[string][]NodePhase{
		"n0": {NodeSucceeded},
		"n1": {NodeRetryableFailure, NodeRetryableFailure},
	}))
	wf := chain()
	for i := 0; i < 3; i++ {
		if _, err := e.Advance(context.Background(), wf); err != nil {
			t.Fatal(err)
		}
	}
	n1 := wf.Nodes["n1"]
	if n1.Phase != NodeFailed || n1.Attempts != 2 {
		t.Fatalf("n1: got phase %v after %d attempts, want Failed after 2", n1.Phase, n1.Attempts)
	}
	if wf.Phase != WorkflowFailed {
		t.Fatalf("workflow: got %v, want failed", wf.Phase)
	}
}

func TestDownstreamOfFailureIsSkipped(t *testing.T) {
	e := NewExecutor(0)
	e.Register("python-task", newScriptedHandler(map[string][]NodePhase{"n0": {NodeFailed}}))
	wf := chain()
	if _, err := e.Advance(context.Background(), wf); err != nil {
		t.Fatal(err)
	}
	if got := wf.Nodes["n1"].Phase; got != NodeSkipped {
		t.Fatalf("n1: got %v, want Skipped", got)
	}
}

func TestMaxParallelismHoldsBackNewNodes(t *testing.T) {
	e := NewExecutor(1)
	e.Register("python-task", newScriptedHandler(nil))
	wf := &Workflow{Nodes: map[string]*Node{
		"a": {ID: "a", TaskType: "python-task"},
		"b": {ID: "b", TaskType: "python-task"},
	}}
	if _, err := e.Advance(context.Background(), wf); err != nil {
		t.Fatal(err)
	}
	if wf.Nodes["a"].Phase != NodeRunning || wf.Nodes["b"].Phase != NodeNotYetStarted {
		t.Fatalf("got a=%v b=%v, want only a running", wf.Nodes["a"].Phase, wf.Nodes["b"].Phase)
	}
}

type failingHandler struct{}

func (failingHandler) Handle(context.Context, *Node) (NodePhase, error) {
	return NodeNotYetStarted, errors.New("plugin unavailable")
}

func TestHandlerErrorsNameTheNode(t *testing.T) {
	e := NewExecutor(0)
	e.Register("python-task", failingHandler{})
	_, err := e.Advance(context.Background(), chain())
	if err == nil || err.Error() != "node n0: plugin unavailable" {
		t.Fatalf("got %v", err)
	}
}
