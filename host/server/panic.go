package server

import (
	"fmt"
	"runtime/debug"
)

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func stack() string { return string(debug.Stack()) }
