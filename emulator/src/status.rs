//! Kubernetes `Status` error bodies, built the way the real API server shapes them.

use serde_json::{Value, json};

/// An API error, rendered as a `kind: Status` body with the matching HTTP code.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code, also written to `code` in the body.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Optional `details` object.
    pub details: Option<Value>,
}

/// One entry of `details.causes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// Cause reason, e.g. `FieldValueInvalid`.
    pub reason: &'static str,
    /// Message for this cause.
    pub message: String,
    /// Field path the cause refers to.
    pub field: String,
}

/// Result type used throughout the emulator request handling.
pub type ApiResult<T> = Result<T, ApiError>;

/// The group/resource pair used in error messages (`deployments.apps`, `configmaps`).
#[derive(Debug, Clone, Copy)]
pub struct GroupResource<'a> {
    /// API group, empty for core.
    pub group: &'a str,
    /// Plural resource name.
    pub resource: &'a str,
}

// === impl GroupResource ===

impl GroupResource<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self, name: &str) -> Value {
        let mut d = json!({ "name": name });
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d["kind"] = json!(self.resource);
        d
    }
}

// === impl ApiError ===

impl ApiError {
    /// The JSON body of this error.
    pub fn to_status(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        body["code"] = json!(self.code);
        body
    }

    /// 404 for a named object.
    pub fn not_found(gr: GroupResource<'_>, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{}\" not found", gr.qualified(), name),
            details: Some(gr.details(name)),
        }
    }

    /// 404 for a path that is not served at all.
    pub fn path_not_found() -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }

    /// 409 AlreadyExists.
    pub fn already_exists(gr: GroupResource<'_>, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{}\" already exists", gr.qualified(), name),
            details: Some(gr.details(name)),
        }
    }

    /// 409 Conflict from optimistic concurrency (stale resourceVersion or failed precondition).
    pub fn conflict(gr: GroupResource<'_>, name: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                gr.qualified(),
                name
            ),
            details: Some(gr.details(name)),
        }
    }

    /// 409 Conflict from server-side apply, with one cause per conflicting field.
    pub fn apply_conflict(message: String, causes: Vec<Cause>) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message,
            details: Some(json!({ "causes": causes_json(&causes) })),
        }
    }

    /// 422 Invalid for an object of `kind` in `group`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = if summary.len() == 1 {
            summary.concat()
        } else {
            format!("[{}]", summary.join(", "))
        };
        let mut details = json!({});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        details["kind"] = json!(kind);
        details["causes"] = causes_json(&causes);
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{qualified} \"{name}\" is invalid: {summary}"),
            details: Some(details),
        }
    }

    /// 422 Invalid raised while validating `PatchOptions`.
    pub fn invalid_patch_options(cause: Cause) -> Self {
        Self::invalid("meta.k8s.io", "PatchOptions", "", vec![cause])
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
            details: None,
        }
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>, details: Option<Value>) -> Self {
        Self {
            code: 403,
            reason: "Forbidden",
            message: message.into(),
            details,
        }
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str) -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "the server does not allow this method on the requested resource ({method})"
            ),
            details: Some(json!({})),
        }
    }

    /// 410 Expired, as sent inside a watch ERROR event or for an old continue token.
    pub fn expired(message: impl Into<String>) -> Self {
        Self {
            code: 410,
            reason: "Expired",
            message: message.into(),
            details: None,
        }
    }

    /// 415 UnsupportedMediaType for a create or update body the server cannot decode (the real server's
    /// message; it accepts JSON, YAML and protobuf, the emulator JSON and YAML).
    pub fn unsupported_body_media_type() -> Self {
        Self {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf".into(),
            details: None,
        }
    }

    /// 415 UnsupportedMediaType for a PATCH of an unknown patch type, worded as the real server words it.
    pub fn unsupported_patch_media_type() -> Self {
        Self {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "415: Unsupported Media Type".into(),
            details: Some(json!({})),
        }
    }

    /// 422 for a patch that cannot be applied (e.g. a failing JSON-patch `test`).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message: message.into(),
            details: None,
        }
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: 500,
            reason: "InternalError",
            message: message.into(),
            details: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// A successful deletion answered with a Status instead of the object.
pub fn delete_success(gr: GroupResource<'_>, name: &str, uid: &str) -> Value {
    let mut details = gr.details(name);
    details["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
            .collect(),
    )
}
