package runtime

import "context"

// KVReader is a read-only view of committed plugin KV, implemented by the
// gateway over its database. Get must be safe for concurrent use.
type KVReader interface {
	// Get returns the committed value of key in namespace.
	Get(ctx context.Context, namespace, key string) (value []byte, ok bool, err error)
}

// KVChange is one write of a call: a put of Value, or a delete.
type KVChange struct {
	Key    string
	Value  []byte // nil for a delete
	Delete bool
}

// ChangeSet is what a call wrote to KV, in first-write order with the last
// write of each key winning. The gateway commits it in the same transaction
// as the request's record; nothing is written by the runtime itself. A
// failed call (any error, plugin errors included) returns an empty
// ChangeSet: its writes are discarded.
type ChangeSet struct {
	Namespace string
	Changes   []KVChange
}

// Empty reports whether the call wrote nothing.
func (c ChangeSet) Empty() bool { return len(c.Changes) == 0 }

// overlay is a call's own writes on top of the committed view.
type overlay struct {
	index   map[string]int // key -> position in changes
	changes []KVChange
}

func (o *overlay) reset() {
	if o.index != nil {
		clear(o.index)
	}
	o.changes = nil
}

// lookup returns the call's own write of key, if any.
func (o *overlay) lookup(key []byte) (KVChange, bool) {
	if o.index == nil {
		return KVChange{}, false
	}
	i, ok := o.index[string(key)] // no allocation for the conversion
	if !ok {
		return KVChange{}, false
	}
	return o.changes[i], true
}

func (o *overlay) set(key []byte, value []byte, del bool) {
	if o.index == nil {
		o.index = make(map[string]int)
	}
	if i, ok := o.index[string(key)]; ok {
		o.changes[i].Value, o.changes[i].Delete = value, del
		return
	}
	k := string(key)
	o.index[k] = len(o.changes)
	o.changes = append(o.changes, KVChange{Key: k, Value: value, Delete: del})
}
