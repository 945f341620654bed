//! The acceptance scenario with the real kubectl as the client: apply a multi-document app
//! server-side, get and describe it, roll out, update, fail, undo, diff, watch, delete.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use ferry_sim::{ImageBehaviour, ImageRule, SimConfig};

use crate::support::{Cluster, fast, fixture, kubectl_bin, text};

/// Waits (on the wall clock: kubectl's own bound) for the app's rollout.
const ROLLOUT_STATUS: &[&str] = &[
    "rollout",
    "status",
    "deployment/web",
    "-n",
    "shop",
    "--timeout=60s",
];

fn config() -> SimConfig {
    SimConfig {
        images: vec![ImageRule::new("*:broken", ImageBehaviour::PullForever)],
        ..fast()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_drives_an_app_through_its_life() {
    let cluster = Cluster::start(config()).await;
    let app = fixture("app.yaml");
    let app = app.to_str().unwrap();

    // apply --server-side of every kind in the app
    let applied = cluster.kubectl_ok(&["apply", "--server-side", "-f", app]);
    for line in [
        "namespace/shop serverside-applied",
        "configmap/web-config serverside-applied",
        "secret/web-secret serverside-applied",
        "deployment.apps/web serverside-applied",
        "service/web serverside-applied",
        "ingress.networking.k8s.io/web serverside-applied",
        "horizontalpodautoscaler.autoscaling/web serverside-applied",
        "poddisruptionbudget.policy/web serverside-applied",
        "networkpolicy.networking.k8s.io/web serverside-applied",
    ] {
        assert!(applied.contains(line), "missing {line:?} in:\n{applied}");
    }

    // rollout status
    let status = cluster.kubectl_ok(ROLLOUT_STATUS);
    assert!(status.contains("successfully rolled out"), "{status}");

    // get: the columns a real cluster prints
    let deployments = cluster.kubectl_ok(&["get", "deployments", "-n", "shop"]);
    let header: Vec<&str> = deployments
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(
        deployments.lines().nth(1).unwrap().starts_with("web"),
        "{deployments}"
    );
    assert!(deployments.contains("3/3"), "{deployments}");
    let pods = cluster.kubectl_ok(&["get", "pods", "-n", "shop", "-l", "app=web", "-o", "wide"]);
    assert_eq!(
        pods.lines().filter(|l| l.contains("Running")).count(),
        3,
        "{pods}"
    );
    assert!(pods.contains("sim-node-"), "{pods}");
    let all = cluster.kubectl_ok(&["get", "cm,secret,ing,hpa,pdb,netpol", "-n", "shop"]);
    for name in [
        "configmap/web-config",
        "secret/web-secret",
        "ingress.networking.k8s.io/web",
        "horizontalpodautoscaler.autoscaling/web",
        "poddisruptionbudget.policy/web",
        "networkpolicy.networking.k8s.io/web",
    ] {
        assert!(all.contains(name), "missing {name} in:\n{all}");
    }
    // the LoadBalancer Service gets a hostname after the (virtual) delay
    let hostname = cluster.kubectl_until(
        &[
            "get",
            "service",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].hostname}",
        ],
        |out| out.ends_with(".elb.us-east-1.amazonaws.com"),
    );
    assert!(hostname.starts_with("k8s-shop-web-"), "{hostname}");
    let services = cluster.kubectl_ok(&["get", "service", "web", "-n", "shop"]);
    assert!(
        services.contains("LoadBalancer") && services.contains(&hostname),
        "{services}"
    );

    // describe, with events
    let described = cluster.kubectl_ok(&["describe", "deployment", "web", "-n", "shop"]);
    for needle in [
        "Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable",
        "StrategyType:           RollingUpdate",
        "Progressing    True    NewReplicaSetAvailable",
        "ScalingReplicaSet",
    ] {
        assert!(
            described.contains(needle),
            "missing {needle:?} in:\n{described}"
        );
    }
    // kubectl 1.32 describes a Service's and an Ingress's backends from EndpointSlices
    let pod_ips = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "shop",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]);
    let mut backends: Vec<String> = pod_ips
        .split_whitespace()
        .map(|ip| format!("{ip}:80"))
        .collect();
    backends.sort();
    assert_eq!(backends.len(), 3, "{pod_ips}");
    let service_description = cluster.kubectl_ok(&["describe", "service", "web", "-n", "shop"]);
    let endpoints_line = service_description
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or_else(|| panic!("no Endpoints line in:\n{service_description}"));
    let mut described: Vec<&str> = endpoints_line["Endpoints:".len()..]
        .trim()
        .split(',')
        .collect();
    described.sort_unstable();
    assert_eq!(described, backends, "{service_description}");
    let ingress_description = cluster.kubectl_ok(&["describe", "ingress", "web", "-n", "shop"]);
    assert!(
        ingress_description.contains(&format!(
            "web:80 ({})",
            endpoints_line["Endpoints:".len()..].trim()
        )),
        "{ingress_description}"
    );
    let slices = cluster.kubectl_ok(&[
        "get",
        "endpointslices",
        "-n",
        "shop",
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    assert!(
        slices.contains("IPv4") && slices.contains(" 80 "),
        "{slices}"
    );

    let pod_description = cluster.kubectl_ok(&["describe", "pods", "-n", "shop", "-l", "app=web"]);
    assert!(
        pod_description.contains("Successfully assigned shop/web-"),
        "{pod_description}"
    );
    assert!(
        pod_description.contains("Started container web"),
        "{pod_description}"
    );

    // diff --server-side: nothing to change, then a change
    let same = cluster.kubectl(&["diff", "--server-side", "-f", app]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let changed_app = cluster.dir.path().join("changed.yaml");
    std::fs::write(
        &changed_app,
        std::fs::read_to_string(app)
            .unwrap()
            .replace("LOG_LEVEL: info", "LOG_LEVEL: debug"),
    )
    .unwrap();
    let diff = cluster.kubectl(&["diff", "--server-side", "-f", changed_app.to_str().unwrap()]);
    assert_eq!(diff.status.code(), Some(1), "{}", text(&diff));
    assert!(
        text(&diff).contains("+  LOG_LEVEL: debug"),
        "{}",
        text(&diff)
    );
    assert!(
        text(&diff).contains("-  LOG_LEVEL: info"),
        "{}",
        text(&diff)
    );

    // set image, then rollout status
    cluster.kubectl_ok(&[
        "set",
        "image",
        "deployment/web",
        "web=nginx:1.28",
        "-n",
        "shop",
    ]);
    let status = cluster.kubectl_ok(ROLLOUT_STATUS);
    assert!(status.contains("successfully rolled out"), "{status}");
    let replica_sets = cluster.kubectl_ok(&["get", "replicasets", "-n", "shop", "-o", "name"]);
    assert_eq!(replica_sets.lines().count(), 2, "{replica_sets}");

    // an image that never pulls: the rollout fails on its progress deadline
    cluster.kubectl_ok(&[
        "set",
        "image",
        "deployment/web",
        "web=nginx:broken",
        "-n",
        "shop",
    ]);
    let failed = cluster.kubectl(ROLLOUT_STATUS);
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        text(&failed).contains("exceeded its progress deadline"),
        "{}",
        text(&failed)
    );
    let pods = cluster.kubectl_ok(&["get", "pods", "-n", "shop"]);
    assert!(
        pods.contains("ImagePullBackOff") || pods.contains("ErrImagePull"),
        "{pods}"
    );
    let conditions = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
    ]);
    assert_eq!(conditions, "ProgressDeadlineExceeded");
    // the old pods kept serving (maxUnavailable 25% of 3 rounds down to 0)
    assert!(
        pods.lines()
            .filter(|l| l.contains("1/1") && l.contains("Running"))
            .count()
            >= 3,
        "{pods}"
    );

    // rollout undo back to the working image
    let undone = cluster.kubectl_ok(&["rollout", "undo", "deployment/web", "-n", "shop"]);
    assert!(undone.contains("rolled back"), "{undone}");
    let status = cluster.kubectl_ok(ROLLOUT_STATUS);
    assert!(status.contains("successfully rolled out"), "{status}");
    let image = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:1.28");
    let history = cluster.kubectl_ok(&["rollout", "history", "deployment/web", "-n", "shop"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "3", "4"], "{history}");

    // get --watch sees a scale-up as it happens (to 4: the HPA keeps it within 2 to 5)
    let mut watch = std::process::Command::new(kubectl_bin())
        .args(["get", "deployments", "-n", "shop", "--watch"])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("HOME", cluster.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    let stdout = BufReader::new(watch.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let mut watched = Vec::new();
    // the scale waits for the watch's first listing, however long kubectl takes to start
    let mut read_until = |pred: &dyn Fn(&str) -> bool| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the watch printed no such line; so far: {watched:?}"));
        let done = pred(&line);
        watched.push(line);
        if done {
            return;
        }
    };
    read_until(&|l| l.starts_with("web"));
    cluster.kubectl_ok(&["scale", "deployment/web", "-n", "shop", "--replicas=4"]);
    read_until(&|l| l.starts_with("web") && l.contains("4/4"));
    watch.kill().unwrap();
    watch.wait().unwrap();
    assert!(watched[0].starts_with("NAME"), "{watched:?}");
    assert!(
        watched[1].starts_with("web") && watched[1].contains("3/3"),
        "{watched:?}"
    );
    assert_eq!(
        watched.iter().filter(|l| l.starts_with("NAME")).count(),
        1,
        "{watched:?}"
    );

    // delete -f at real-time speed (kubectl paces itself on the wall clock), then the garbage
    // collector removes what the Deployment owned
    cluster
        .sim
        .set_config(SimConfig {
            speed: 1.0,
            ..config()
        })
        .unwrap();
    let deleted = cluster.kubectl(&["delete", "-f", app]);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(
        text(&deleted).contains("deployment.apps \"web\" deleted"),
        "{}",
        text(&deleted)
    );
    cluster.sim.set_config(config()).unwrap();
    let left = cluster.kubectl_ok(&["get", "replicasets,pods,endpointslices", "-A", "-o", "name"]);
    assert_eq!(left.trim(), "", "left behind: {left}");
    let namespaces = cluster.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(!namespaces.contains("namespace/shop"), "{namespaces}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_logs_show_crash_loops() {
    let cluster = Cluster::start(SimConfig {
        images: vec![ImageRule::new("crasher", ImageBehaviour::Crash)],
        ..fast()
    })
    .await;
    cluster.kubectl_ok(&["create", "-f", fixture("crasher.yaml").to_str().unwrap()]);
    let pods = cluster.kubectl_until(
        &["get", "pods", "-n", "default", "-l", "app=crasher"],
        |out| out.contains("CrashLoopBackOff") && !out.contains("   0 "),
    );
    assert!(pods.contains("0/1"), "{pods}");
    let name = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=crasher",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    // exec is refused with the reason, not as if the pod were missing
    let exec = cluster.kubectl(&["exec", &name, "--", "ls"]);
    assert!(!exec.status.success(), "{}", text(&exec));
    assert!(
        text(&exec).contains("ferry-sim runs no containers: pods/exec is not simulated"),
        "{}",
        text(&exec)
    );
    let logs = cluster.kubectl_ok(&["logs", &name, "--previous"]);
    assert!(logs.contains("simulated crash"), "{logs}");
    let described = cluster.kubectl_ok(&["describe", "pod", &name]);
    assert!(
        described.contains("Back-off restarting failed container crasher"),
        "{described}"
    );
    assert!(
        described.contains("Last State:     Terminated"),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_secrets_keep_string_data_in_data() {
    let cluster = Cluster::start(fast()).await;
    let app = fixture("app.yaml");
    cluster.kubectl_ok(&["apply", "--server-side", "-f", app.to_str().unwrap()]);
    // stringData is write-only: merged into data, base64, as a real cluster stores it
    let secret = cluster.kubectl_ok(&["get", "secret", "web-secret", "-n", "shop", "-o", "json"]);
    let secret: serde_json::Value = serde_json::from_str(&secret).unwrap();
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==", "{secret}");
    assert!(secret.get("stringData").is_none(), "{secret}");
    // applying the same Secret again changes nothing on the server
    let version = |c: &Cluster| {
        c.kubectl_ok(&[
            "get",
            "secret",
            "web-secret",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
    };
    let before = version(&cluster);
    cluster.kubectl_ok(&["apply", "--server-side", "-f", app.to_str().unwrap()]);
    assert_eq!(version(&cluster), before);

    // a TLS Secret needs both halves; the error names the key, never a value
    let tls = cluster.dir.path().join("tls.yaml");
    std::fs::write(
        &tls,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: half, namespace: shop}\ntype: kubernetes.io/tls\nstringData: {tls.crt: TOP-SECRET-CERT}\n",
    )
    .unwrap();
    let out = cluster.kubectl(&["apply", "-f", tls.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("data[tls.key]: Required value"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("TOP-SECRET-CERT"), "{}", text(&out));
}

/// A TLS simulator listening on every address of a family: its kubeconfig names the loopback
/// address of that family with the bound port (a client cannot connect to `0.0.0.0`), and the
/// certificate is valid for it, so kubectl verifies the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_trusts_a_tls_simulator_listening_on_an_unspecified_address() {
    let mut families = vec![("0.0.0.0:0", "https://127.0.0.1:")];
    // Not every test host has IPv6.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        families.push(("[::]:0", "https://[::1]:"));
    }
    for (listen, url) in families {
        let builder = ferry_sim::Sim::builder()
            .config(fast())
            .tls(true)
            .listen(listen.parse().unwrap());
        let cluster = Cluster::start_with(builder).await;
        let port = cluster.sim.address().port();
        assert_ne!(port, 0, "{listen}");
        assert_eq!(cluster.sim.url(), format!("{url}{port}"), "{listen}");
        assert!(cluster.sim.address().ip().is_unspecified(), "{listen}");
        let kubeconfig = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
        assert!(
            kubeconfig.contains(&format!("server: {url}{port}")),
            "{listen}: {kubeconfig}"
        );
        let namespaces = cluster.kubectl_ok(&["get", "namespaces"]);
        assert!(namespaces.contains("kube-system"), "{listen}: {namespaces}");
    }
    // A specific address, loopback or not, is in the certificate too.
    if std::net::TcpListener::bind("127.0.0.2:0").is_ok() {
        let builder = ferry_sim::Sim::builder()
            .config(fast())
            .tls(true)
            .listen("127.0.0.2:0".parse().unwrap());
        let cluster = Cluster::start_with(builder).await;
        assert!(cluster.sim.url().starts_with("https://127.0.0.2:"));
        let namespaces = cluster.kubectl_ok(&["get", "namespaces"]);
        assert!(namespaces.contains("kube-system"), "{namespaces}");
    }
}
