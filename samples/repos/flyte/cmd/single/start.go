// Command flyte runs the whole Flyte backend in one process, for sandboxes and demos.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flyteorg/flyte/flyteadmin/pkg/manager"
	"github.com/flyteorg/flyte/flyteadmin/pkg/server"
	"github.com/flyteorg/flyte/flytepropeller/pkg/controller"
	"github.com/flyteorg/flyte/flytepropeller/pkg/controller/config"
)

var version = "dev"

// options selects which components this process runs.
type options struct {
	adminAddr      string
	disableAdmin   bool
	disableControl bool
	workers        int
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "start" {
		fmt.Fprintf(os.Stderr, "usage: flyte start [flags]  (version %s)\n", version)
		os.Exit(2)
	}
	opts := options{}
	fs := flag.NewFlagSet("start", flag.ExitOnError)
	fs.StringVar(&opts.adminAddr, "admin-addr", ":8088", "address of the admin API")
	fs.BoolVar(&opts.disableAdmin, "disable-admin", false, "do not run the admin API")
	fs.BoolVar(&opts.disableControl, "disable-propeller", false, "do not run the workflow controller")
	fs.IntVar(&opts.workers, "workers", 4, "number of controller workers")
	_ = fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		log.Fatal(err)
	}
}

// run starts the enabled components and stops all of them as soon as one fails.
func run(ctx context.Context, opts options) error {
	if opts.disableAdmin && opts.disableControl {
		return errors.New("nothing to run: both admin and propeller are disabled")
	}
	g, ctx := errgroup.WithContext(ctx)
	if !opts.disableAdmin {
		g.Go(func() error { return runAdmin(ctx, opts.adminAddr) })
	}
	if !opts.disableControl {
		g.Go(func() error { return runPropeller(ctx, opts.workers) })
	}
	return g.Wait()
}

func runAdmin(ctx context.Context, addr string) error {
	executions := manager.NewExecutionManager([]string{"development", "staging", "production"}, time.Now)
	srv := &http.Server{Addr: addr, Handler: server.NewHandler(executions), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	log.Printf("admin listening on %s", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}

func runPropeller(ctx context.Context, workers int) error {
	cfg := config.Default()
	cfg.Workers = workers
	c, err := controller.New(cfg, controller.NewInMemoryStore())
	if err != nil {
		return fmt.Errorf("propeller: %w", err)
	}
	log.Printf("propeller running with %d workers", workers)
	return c.Run(ctx)
}
