-- Projects and the domains each project is available in.
CREATE TABLE IF NOT EXISTS projects (
    identifier  VARCHAR(64) PRIMARY KEY,
    name        VARCHAR(255) NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    labels      JSONB NOT NULL DEFAULT '{}'::jsonb,
    state       SMALLINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS launch_plans (
    project     VARCHAR(64) NOT NULL REFERENCES projects (identifier),
    domain      VARCHAR(64) NOT NULL,
    name        VARCHAR(255) NOT NULL,
    version     VARCHAR(255) NOT NULL,
    spec        BYTEA NOT NULL,
    -- Only one version of a launch plan can be active, i.e. carry its schedule.
    active      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project, domain, name, version)
);

CREATE UNIQUE INDEX IF NOT EXISTS launch_plans_one_active
    ON launch_plans (project, domain, name)
    WHERE active;
