module github.com/otpcgate/otpcgate/sdk

go 1.24
