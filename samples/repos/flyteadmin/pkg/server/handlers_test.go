package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flyteorg/flyteadmin/pkg/manager"
)

func newTestHandler() *Handler {
	fixed := func() time.Time { return time.Date(2024, 1, 17, 14, 0, 0, 0, time.UTC) }
	return NewHandler(manager.NewExecutionManager([]string{"development"}, fixed))
}

func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec
}

func TestCreateThenGet(t *testing.T) {
	h := newTestHandler()
	body := `{"project":"flytesnacks","domain":"development","name":"run-1","launch_plan":"basics.hello"}`
	if rec := do(h, http.MethodPost, "/api/v1/executions", body); rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	rec := do(h, http.MethodGet, "/api/v1/executions/flytesnacks/development/run-1", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"phase":"QUEUED"`) {
		t.Fatalf("get: %d %s", rec.Code, rec.Body)
	}
}

func TestDuplicateNameIsAConflict(t *testing.T) {
	h := newTestHandler()
	body := `{"project":"p","domain":"development","name":"dup","launch_plan":"lp"}`
	do(h, http.MethodPost, "/api/v1/executions", body)
	if rec := do(h, http.MethodPost, "/api/v1/executions", body); rec.Code != http.StatusConflict {
		t.Fatalf("got %d, want 409", rec.Code)
	}
}

func TestUnknownDomainIsRejected(t *testing.T) {
	h := newTestHandler()
	body := `{"project":"p","domain":"prod","launch_plan":"lp"}`
	rec := do(h, http.MethodPost, "/api/v1/executions", body)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "unknown domain") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

func TestMissingExecutionIs404(t *testing.T) {
	rec := do(newTestHandler(), http.MethodGet, "/api/v1/executions/p/development/nope", "")
	if rec.Code != http.StatusNotFound {
		t.Fatalf("got %d", rec.Code)
	}
}
