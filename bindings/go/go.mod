module github.com/mcrs-project/mcrs-go

go 1.24
