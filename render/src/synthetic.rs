//! A generated large kustomization (base plus overlay) for benchmarks: `apps` apps of four objects each.
//!
//! Each app is a Deployment (its ConfigMap as `envFrom` and a volume, its ServiceAccount), a Service, a
//! ConfigMap and a ServiceAccount, in files of 50 apps. The overlay renames everything (`namePrefix`,
//! `nameSuffix`), moves it into a namespace, adds labels with selectors, annotations, an image override, a
//! generated ConfigMap every Deployment reads, a strategic-merge patch on every Deployment, a JSON6902 patch
//! on the Services of one tier, and one untargeted patch for every tenth app. So every name reference of
//! every object is rewritten, which is the expensive part of a build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Apps in the generated kustomization for 4,000 objects (plus the generated ConfigMap).
pub const APPS_FOR_4000_OBJECTS: usize = 1000;

/// Writes the kustomization under `root` (`root/base`, `root/overlay`) and returns the overlay directory.
pub fn write_kustomization(root: &Path, apps: usize) -> std::io::Result<PathBuf> {
    let base = root.join("base");
    let overlay = root.join("overlay");
    std::fs::create_dir_all(&base)?;
    std::fs::create_dir_all(&overlay)?;
    let mut files = Vec::new();
    for (chunk, first) in (0..apps).step_by(50).enumerate() {
        let name = format!("apps-{chunk:03}.yaml");
        let mut text = String::new();
        for app in first..(first + 50).min(apps) {
            app_objects(&mut text, app);
        }
        std::fs::write(base.join(&name), text)?;
        files.push(name);
    }
    let mut kustomization = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nlabels:\n- pairs:\n    app.kubernetes.io/part-of: fleet\nresources:\n",
    );
    for file in &files {
        let _ = writeln!(kustomization, "- {file}");
    }
    std::fs::write(base.join("kustomization.yaml"), kustomization)?;

    let mut overlay_text = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../base
namespace: edge
namePrefix: prod-
nameSuffix: -v2
labels:
- pairs:
    env: prod
  includeSelectors: true
- pairs:
    cost-center: cdn
commonAnnotations:
  team.example.com/owner: edge-platform
images:
- name: nginx
  newName: registry.example.com/edge/nginx
  newTag: 1.27.3
configMapGenerator:
- name: shared-settings
  literals:
  - REGION=eu-west
  - LOG_LEVEL=info
patches:
- target:
    kind: Deployment
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
    spec:
      template:
        spec:
          containers:
          - name: app
            envFrom:
            - configMapRef:
                name: shared-settings
            resources:
              limits:
                memory: 256Mi
- target:
    kind: Service
    labelSelector: tier=web
  patch: |-
    - op: add
      path: /metadata/annotations/edge.example.com~1exposed
      value: \"true\"
",
    );
    for app in (0..apps).step_by(10) {
        let _ = write!(
            overlay_text,
            "- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: app-{app:04}\n    spec:\n      replicas: 3\n"
        );
    }
    std::fs::write(overlay.join("kustomization.yaml"), overlay_text)?;
    Ok(overlay)
}

fn app_objects(out: &mut String, app: usize) {
    let tier = if app.is_multiple_of(2) {
        "web"
    } else {
        "cache"
    };
    let _ = write!(
        out,
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{app:04}
  labels:
    app: app-{app:04}
    tier: {tier}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: app-{app:04}
  template:
    metadata:
      labels:
        app: app-{app:04}
        tier: {tier}
    spec:
      serviceAccountName: app-{app:04}
      containers:
      - name: app
        image: nginx:1.25
        ports:
        - containerPort: 8080
          name: http
        envFrom:
        - configMapRef:
            name: app-{app:04}
        volumeMounts:
        - name: config
          mountPath: /etc/app
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
      volumes:
      - name: config
        configMap:
          name: app-{app:04}
---
apiVersion: v1
kind: Service
metadata:
  name: app-{app:04}
  labels:
    app: app-{app:04}
    tier: {tier}
spec:
  selector:
    app: app-{app:04}
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-{app:04}
data:
  app.properties: |
    name=app-{app:04}
    tier={tier}
    threads=4
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app-{app:04}
---
"
    );
}
