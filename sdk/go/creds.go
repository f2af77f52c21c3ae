package edgecd

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// bearer sends "authorization: Bearer <token>" with a call.
type bearer struct {
	token string
	// secure is false only for a plaintext connection to loopback, the one
	// case where the token may go without TLS.
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// authConn adds the client's per-call credentials to every call on a shared
// connection, so that clients with different tokens can share one.
type authConn struct {
	conn  *grpc.ClientConn
	creds credentials.PerRPCCredentials
}

func (a authConn) opts(opts []grpc.CallOption) []grpc.CallOption {
	if a.creds == nil {
		return opts
	}
	// First, so that credentials the caller passes for one call win.
	return append([]grpc.CallOption{grpc.PerRPCCredentials(a.creds)}, opts...)
}

func (a authConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return a.conn.Invoke(ctx, method, args, reply, a.opts(opts)...)
}

func (a authConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return a.conn.NewStream(ctx, desc, method, a.opts(opts)...)
}
