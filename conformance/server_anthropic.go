package conformance

import (
	"strconv"
	"strings"
)

// message makes the answer of Anthropic's /v1/messages: a message, or the
// events of its stream (message_start, a text content block of one delta a
// word, message_delta with the usage of the output, message_stop), each an
// "event:" and a "data:" line. s.mu is held (for the id sequence).
func (s *Server) message(p *parsedBody) (body []byte, events [][]byte) {
	s.seq++
	id := "msg_" + strconv.FormatUint(s.seq, 10)
	usage := func(b []byte, in, out int) []byte {
		b = append(b, `"usage":{"input_tokens":`...)
		b = strconv.AppendInt(b, int64(in), 10)
		b = append(b, `,"output_tokens":`...)
		b = strconv.AppendInt(b, int64(out), 10)
		return append(b, '}')
	}
	head := func(b []byte) []byte {
		b = append(b, `{"id":"`...)
		b = append(b, id...)
		b = append(b, `","type":"message","role":"assistant","model":`...)
		return appendJSONString(b, p.model)
	}
	if !p.stream {
		b := head(make([]byte, 0, 320))
		b = append(b, `,"content":[{"type":"text","text":`...)
		b = appendJSONString(b, replyText)
		b = append(b, `}],"stop_reason":"end_turn","stop_sequence":null,`...)
		return append(usage(b, p.text, replyTokens), '}'), nil
	}
	event := func(name string, data []byte) []byte {
		b := make([]byte, 0, len(name)+len(data)+16)
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, "\ndata: "...)
		b = append(b, data...)
		return append(b, "\n\n"...)
	}
	start := append([]byte(`{"type":"message_start","message":`), head(nil)...)
	start = append(start, `,"content":[],"stop_reason":null,"stop_sequence":null,`...)
	start = append(usage(start, p.text, 1), "}}"...)
	events = append(events, event("message_start", start),
		event("content_block_start", []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)))
	for word := range strings.SplitAfterSeq(replyText, " ") {
		d := append([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`), nil...)
		d = appendJSONString(d, word)
		events = append(events, event("content_block_delta", append(d, "}}"...)))
	}
	delta := []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},`)
	delta = append(usage(delta, p.text, replyTokens), '}')
	return nil, append(events,
		event("content_block_stop", []byte(`{"type":"content_block_stop","index":0}`)),
		event("message_delta", delta),
		event("message_stop", []byte(`{"type":"message_stop"}`)))
}
