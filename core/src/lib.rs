//! Domain model and pure logic of edgecd: applications, clusters, projects, sync and health vocabulary, and the delivery state machines of the hub-spoke protocol. No IO here.
