module github.com/ferrysync/ferry

go 1.25
