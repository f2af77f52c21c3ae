//! edgecd hub: fleet store, spoke streams, command fan-out, the fleet API and the console.
