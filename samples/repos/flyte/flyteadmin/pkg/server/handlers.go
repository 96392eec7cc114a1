// Package server exposes the admin API over HTTP.
package server

import (
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"strings"

	"github.com/flyteorg/flyteadmin/pkg/manager"
)

// Handler routes admin API requests to the managers.
type Handler struct {
	executions *manager.ExecutionManager
	mux        *http.ServeMux
}

// NewHandler registers the routes.
func NewHandler(executions *manager.ExecutionManager) *Handler {
	h := &Handler{executions: executions, mux: http.NewServeMux()}
	h.mux.HandleFunc("/healthcheck", h.healthcheck)
	h.mux.HandleFunc("/api/v1/executions", h.createExecution)
	h.mux.HandleFunc("/api/v1/executions/", h.getExecution)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) healthcheck(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) createExecution(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, errors.New("use POST"))
		return
	}
	var req manager.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	exec, err := h.executions.Create(r.Context(), req)
	switch {
	case errors.Is(err, manager.ErrAlreadyExists):
		writeError(w, http.StatusConflict, err)
	case err != nil:
		writeError(w, http.StatusBadRequest, err)
	default:
		writeJSON(w, http.StatusCreated, exec)
	}
}

func (h *Handler) getExecution(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/executions/"), "/")
	if len(parts) != 3 {
		writeError(w, http.StatusBadRequest, errors.New("expected /api/v1/executions/{project}/{domain}/{name}"))
		return
	}
	id := manager.ExecutionID{Project: parts[0], Domain: parts[1], Name: parts[2]}
	exec, err := h.executions.Get(r.Context(), id)
	if errors.Is(err, manager.ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, exec)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		log.Printf("writing response: %v", err)
	}
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
