module minop.local/pause

go 1.22
