module example.invalid/storectx

go 1.19
