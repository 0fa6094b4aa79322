module github.com/mcrs-project/mcrs-go/bench

go 1.24

require github.com/mcrs-project/mcrs-go v0.0.0

require github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c

replace github.com/mcrs-project/mcrs-go => ../
