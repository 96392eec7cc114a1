// Command flyteadmin serves the admin API.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/flyteorg/flyteadmin/pkg/manager"
	"github.com/flyteorg/flyteadmin/pkg/server"
)

func main() {
	addr := flag.String("addr", ":8088", "address to listen on")
	flag.Parse()

	executions := manager.NewExecutionManager([]string{"development", "staging", "production"}, time.Now)
	srv := &http.Server{
		Addr:              *addr,
		Handler:           server.NewHandler(executions),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("flyteadmin listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}
