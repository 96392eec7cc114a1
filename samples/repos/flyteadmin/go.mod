module github.com/flyteorg/flyteadmin

go 1.21

require (
	github.com/flyteorg/flyteidl v1.10.7
	gorm.io/gorm v1.25.5
)
