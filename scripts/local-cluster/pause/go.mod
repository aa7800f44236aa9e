module loadlab.invalid/pause

go 1.22
