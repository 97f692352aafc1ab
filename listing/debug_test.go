package listing

import "fmt"

func init() { debugLog = func(kv ...any) { fmt.Println(kv...) } }
