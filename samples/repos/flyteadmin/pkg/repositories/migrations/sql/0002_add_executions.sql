-- Executions: one row per launched workflow run.
CREATE TABLE IF NOT EXISTS executions (
    project        VARCHAR(64) NOT NULL,
    domain         VARCHAR(64) NOT NULL,
    name           VARCHAR(32) NOT NULL,
    launch_plan    VARCHAR(255) NOT NULL,
    phase          VARCHAR(32) NOT NULL DEFAULT 'QUEUED',
    started_at     TIMESTAMPTZ,
    duration_ms    BIGINT,
    error_message  TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project, domain, name)
);

-- The console lists the newest executions of a project first.
CREATE INDEX IF NOT EXISTS executions_by_project_created
    ON executions (project, domain, created_at DESC);

CREATE INDEX IF NOT EXISTS executions_by_phase
    ON executions (phase)
    WHERE phase IN ('QUEUED', 'RUNNING');
