package otpc

// Message is implemented by every message and plugin frame type of this
// package (pointer receivers).
type Message interface {
	// AppendJSON appends the JSON encoding to dst.
	AppendJSON(dst []byte) []byte
	// UnmarshalJSON decodes strictly, replacing the whole value.
	UnmarshalJSON(data []byte) error
	// Validate checks required fields, formats and unions (*FieldError).
	Validate() error
}

// Request is a message with a RequestHeader.
type Request interface {
	Message
	// Header returns a pointer to the request header.
	Header() *RequestHeader
}

// Response is a message with a ResponseHeader (including ErrorResponse).
type Response interface {
	Message
	// Header returns a pointer to the response header.
	Header() *ResponseHeader
}
