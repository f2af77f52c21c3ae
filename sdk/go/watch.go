package edgecd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"google.golang.org/grpc"

	"github.com/edgecd/edgecd/sdk/go/edgecdv1"
)

// WatchEvents yields the changes req asks for (req.Kinds; applications
// filtered by req.AppFilter) as the hub sends them, on one Watch stream. The
// hub starts the stream with a BOOKMARK event, and sends one now and then
// while nothing changes; each event's ResumeToken resumes after it (set it
// as req.ResumeToken on a new watch). On a RESET event, re-list what you
// follow, then keep watching.
//
// The sequence ends when the hub closes the stream, with the error that broke
// it (its code is Canceled once ctx is), or when the loop breaks, which ends
// the stream.
//
//	req := &edgecdv1.WatchRequest{Kinds: []edgecdv1.WatchKind{edgecdv1.WatchKind_WATCH_KIND_APPLICATIONS}}
//	for event, err := range client.WatchEvents(ctx, req) {
//		if err != nil {
//			return err
//		}
//		if app := event.GetApplication(); app != nil {
//			fmt.Println(event.GetType(), app.GetProject(), app.GetName(), app.GetSync())
//		}
//	}
func (c *Client) WatchEvents(ctx context.Context, req *edgecdv1.WatchRequest, opts ...grpc.CallOption) iter.Seq2[*edgecdv1.WatchEvent, error] {
	return func(yield func(*edgecdv1.WatchEvent, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if req == nil {
			req = &edgecdv1.WatchRequest{}
		}
		stream, err := c.Watch(ctx, req, opts...)
		if err != nil {
			yield(nil, fmt.Errorf("edgecd: Watch: %w", err))
			return
		}
		for {
			event, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, fmt.Errorf("edgecd: Watch: %w", err))
				return
			}
			if !yield(event, nil) {
				return
			}
		}
	}
}
