//! The `ferry image` and `ferry build` commands, run as the real binary against the real
//! registries: exit codes, JSON output, and no secret in any output even at trace level.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::support::*;

fn ferry(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    // No docker login of the machine's may leak into the tests: an empty docker config.
    let docker_config = std::env::temp_dir().join("ferry-it-empty-docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let mut cmd = Command::new(ferry_testkit::ferry_bin());
    cmd.args(args)
        .env_remove("FERRY_ENV")
        .env_remove("FERRY_REGISTRY_USERNAME")
        .env_remove("FERRY_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", &docker_config)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .expect("run ferry (build it: cargo build -p ferry-cli --all-features)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "ferry failed: {}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

/// Asserts that ferry exited with `expected` and said each of `says`.
fn assert_exit(out: &Output, expected: i32, says: &[&str]) {
    let all = text(out);
    assert_eq!(code(out), expected, "{all}");
    for s in says {
        assert!(all.contains(s), "expected `{s}` in:\n{all}");
    }
}

/// Every secret the test registries use, and the shapes tokens take.
fn assert_no_secrets(out: &str) {
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user(), password()));
    for secret in [
        password(),
        basic,
        ferry_testkit::server("FERRY_TEST_REGISTRY_READER_PASSWORD"),
    ] {
        assert!(
            !out.contains(&secret),
            "a secret leaked into the output:\n{out}"
        );
    }
    assert!(!out.contains("eyJ"), "a JWT leaked into the output:\n{out}");
    assert!(
        !out.to_ascii_lowercase().contains("authorization: "),
        "an auth header leaked:\n{out}"
    );
}

#[test]
fn push_in_every_auth_mode_prints_json_and_no_secret_even_at_trace_level() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 4, 50_000);
    let source = layout.source("latest");
    let pw = format!("{}\n", password());
    let u = user();
    for registry in [noauth(), htpasswd(), token()] {
        let path = repo("cli");
        let dest = format!("{registry}/{path}:3f2c1e9");
        let mut args = vec![
            "image", "push", &source, &dest, "--tag", "latest", "-o", "json", "-vvv",
        ];
        let authed = registry != noauth();
        if authed {
            args.extend(["--username", &u, "--password-stdin"]);
        }
        let out = ferry(
            &args,
            authed.then_some(pw.as_str()),
            &[("FERRY_LOG", "trace")],
        );
        let all = text(&out);
        assert_no_secrets(&all);
        let report = json(&out);
        assert_eq!(report["digest"], layout.digest.to_string());
        assert_eq!(report["blobs"]["uploaded"], 5);
        assert_eq!(
            report["pinned"],
            format!("{registry}/{path}@{}", layout.digest)
        );
        let creds = authed.then(|| (u.as_str(), password()));
        let creds = creds.as_ref().map(|(u, p)| (*u, p.as_str()));
        assert_eq!(
            skopeo_digest(&registry, &format!("{path}:latest"), creds),
            layout.digest.to_string()
        );

        // Re-push: zero blob bytes, and the password from the environment works too.
        let mut env = vec![("FERRY_LOG", "trace")];
        let pw_env = password();
        if authed {
            env.extend([
                ("FERRY_REGISTRY_USERNAME", u.as_str()),
                ("FERRY_REGISTRY_PASSWORD", pw_env.as_str()),
            ]);
        }
        let out = ferry(
            &[
                "image", "push", &source, &dest, "--tag", "latest", "-o", "json", "-vvv",
            ],
            None,
            &env,
        );
        assert_no_secrets(&text(&out));
        let again = json(&out);
        assert_eq!(again["unchanged"], true, "{again}");
        assert_eq!(again["blob_bytes_uploaded"], 0);
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 1, 1000);
    let source = layout.source("latest");
    let reg = noauth();

    let out = ferry(
        &["image", "push", &source, &format!("{reg}/Shop/Web:v1")],
        None,
        &[],
    );
    assert_exit(&out, 3, &["Shop/Web", "lower-case"]);

    let out = ferry(
        &["image", "push", &source, &format!("{reg}/a:bad:tag")],
        None,
        &[],
    );
    assert_exit(&out, 3, &[]);

    // A layout directory named without its transport: which one to write.
    let bare = layout.dir.display().to_string();
    let out = ferry(&["image", "push", &bare, &format!("{reg}/x:v1")], None, &[]);
    assert_exit(
        &out,
        3,
        &[
            "is a local path without a transport",
            &format!("did you mean oci:{bare}?"),
        ],
    );
    // A Docker config.json that is not JSON: invalid input naming the file, its content never
    // shown.
    let bad_config = tmp.path().join("docker");
    std::fs::create_dir_all(&bad_config).unwrap();
    std::fs::write(
        bad_config.join("config.json"),
        "{\"auths\": {\"x\": {\"auth\": \"c2VjcmV0LXZhbHVl\"",
    )
    .unwrap();
    let out = ferry(
        &["image", "ls", &format!("{reg}/x")],
        None,
        &[("DOCKER_CONFIG", bad_config.to_str().unwrap())],
    );
    assert_exit(&out, 3, &["config.json", "fix the file"]);
    assert!(!text(&out).contains("c2VjcmV0"), "{}", text(&out));

    // Relative too, though `NAME` would also read as a Docker Hub image.
    let parent = layout.dir.parent().unwrap();
    let name = layout.dir.file_name().unwrap().to_str().unwrap();
    let out = std::process::Command::new(ferry_testkit::ferry_bin())
        .current_dir(parent)
        .args(["image", "push", name, &format!("{reg}/x:v1")])
        .output()
        .unwrap();
    assert_exit(
        &out,
        3,
        &[
            &format!("did you mean oci:{name}?"),
            &format!("docker://{name}"),
        ],
    );

    let out = ferry(
        &["image", "push", &source, "x", "--tag", "-nope"],
        None,
        &[],
    );
    assert_eq!(
        code(&out),
        2,
        "a flag-like value is a usage error: {}",
        text(&out)
    );
    let out = ferry(
        &[
            "image",
            "push",
            &source,
            &format!("{reg}/x"),
            "--tag=bad/tag",
        ],
        None,
        &[],
    );
    assert_exit(&out, 3, &[]);

    let out = ferry(
        &["image", "push", "dir:/tmp/x", &format!("{reg}/x:v1")],
        None,
        &[],
    );
    assert_exit(&out, 3, &["not supported"]);

    // A mistyped transport is named as such, not taken for a registry host.
    let out = ferry(
        &[
            "image",
            "push",
            "oci-arhive:./img.tar",
            &format!("{reg}/x:v1"),
        ],
        None,
        &[],
    );
    assert_exit(
        &out,
        3,
        &["unknown transport `oci-arhive:`", "oci-archive:FILE"],
    );

    // A bad tag is named as the user gave it: `TAG` for `image tag`, `--tag` for `build`
    // (checked before any build starts).
    let out = ferry(
        &["image", "tag", &format!("{reg}/x:v1"), "repo/x:1"],
        None,
        &[],
    );
    assert_exit(&out, 3, &["TAG `repo/x:1`", "invalid tag"]);
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    let ctx = ctx.display().to_string();
    let out = ferry(
        &[
            "build",
            &ctx,
            "--push",
            &format!("{reg}/x:v1"),
            "--tag",
            "bad tag",
        ],
        None,
        &[],
    );
    assert_exit(&out, 3, &["--tag `bad tag`", "invalid tag"]);

    // A password written into a reference is refused and never echoed.
    for (src, dest) in [
        (source.clone(), format!("https://u:s3cret-pw@{reg}/x:v1")),
        (
            format!("docker://u:s3cret-pw@{reg}/x:v1"),
            format!("{reg}/y:v1"),
        ),
    ] {
        let out = ferry(&["image", "copy", &src, &dest], None, &[]);
        assert_exit(&out, 3, &["cannot hold credentials", "***@"]);
        assert!(!text(&out).contains("s3cret-pw"), "{}", text(&out));
    }
    let out = ferry(
        &["image", "resolve", &format!("https://{reg}/x:v1")],
        None,
        &[],
    );
    assert_exit(&out, 3, &["`https://` is a URL scheme"]);

    // A source that is not there is bad input, named, not a runtime failure.
    let missing = tmp.path().join("no-such-layout");
    for spec in [
        format!("oci:{}", missing.display()),
        format!("oci-archive:{}", missing.display()),
        format!("docker-archive:{}", missing.display()),
    ] {
        let out = ferry(&["image", "push", &spec, &format!("{reg}/x:v1")], None, &[]);
        assert_exit(&out, 3, &["no-such-layout", "No such file"]);
    }

    let out = ferry(
        &[
            "image",
            "push",
            &source,
            "ferry-no-such-registry.invalid/app:v1",
        ],
        None,
        &[],
    );
    assert_exit(&out, 1, &["does not resolve"]);

    let path = repo("cli-wrong");
    let out = ferry(
        &[
            "image",
            "push",
            &source,
            &format!("{}/{path}:v1", htpasswd()),
            "--username",
            &user(),
            "--password-stdin",
        ],
        Some("definitely-wrong-password\n"),
        &[("FERRY_LOG", "trace")],
    );
    assert_exit(&out, 11, &["credentials"]);
    assert!(!text(&out).contains("definitely-wrong-password"));

    let out = ferry(
        &[
            "image",
            "push",
            &source,
            &format!("{reg}/x:v1"),
            "--username",
            "u",
        ],
        None,
        &[],
    );
    assert_exit(&out, 3, &["password-stdin"]);

    // A corrupt layout: exit 3, nothing tagged.
    let (bad, original) = &layout.blobs[0];
    let mut corrupt = original.clone();
    corrupt[0] ^= 1;
    std::fs::write(layout.blob_path(bad), corrupt).unwrap();
    let path = repo("cli-corrupt");
    let out = ferry(
        &["image", "push", &source, &format!("{reg}/{path}:v1")],
        None,
        &[],
    );
    assert_exit(&out, 3, &["digest mismatch"]);
    let out = ferry(
        &["image", "resolve", &format!("{reg}/{path}:v1")],
        None,
        &[],
    );
    assert_exit(&out, 3, &["not found"]); // nothing was tagged
}

#[test]
fn environment_registry_placement_and_immutable_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (layout(tmp.path(), 2, 2000), layout(tmp.path(), 2, 2000));
    let prefix = repo("env");
    let config = tmp.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "[app]\nname = \"shop\"\n\n[env.prod.registry]\nprovider = \"oci\"\nhost = \"{}\"\nprefix = \"{prefix}\"\nimmutable = true\n",
            noauth()
        ),
    )
    .unwrap();
    let cfg = config.display().to_string();
    let out = ferry(
        &[
            "image",
            "push",
            &a.source("latest"),
            "web:v1",
            "--env",
            "prod",
            "--config",
            &cfg,
            "-o",
            "json",
        ],
        None,
        &[],
    );
    let report = json(&out);
    assert_eq!(report["repository"], format!("{}/{prefix}/web", noauth()));
    let out = ferry(
        &[
            "image",
            "push",
            &b.source("latest"),
            "web:v1",
            "--env",
            "prod",
            "--config",
            &cfg,
        ],
        None,
        &[],
    );
    assert_exit(&out, 3, &["immutable"]);
    assert_eq!(
        skopeo_digest(&noauth(), &format!("{prefix}/web:v1"), None),
        a.digest.to_string()
    );

    // Promotion inside the environment's registry: bare names on both sides.
    let out = ferry(
        &[
            "image",
            "copy",
            "web:v1",
            "web:v1.2.3",
            "--tag",
            "prod-latest",
            "--env",
            "prod",
            "--config",
            &cfg,
            "-o",
            "json",
        ],
        None,
        &[],
    );
    let report = json(&out);
    assert_eq!(report["digest"], a.digest.to_string());
    assert_eq!(
        report["blobs"]["present"], 3,
        "same repository: every blob is already there"
    );
    assert_eq!(
        skopeo_digest(&noauth(), &format!("{prefix}/web:prod-latest"), None),
        a.digest.to_string()
    );

    // A config mistake is located.
    std::fs::write(
        &config,
        "[app]\nname = \"shop\"\n\n[env.prod.registry]\nprovider = \"oci\"\nhots = \"x\"\n",
    )
    .unwrap();
    let out = ferry(
        &["image", "ls", "web", "--env", "prod", "--config", &cfg],
        None,
        &[],
    );
    assert_exit(&out, 3, &["ferry.toml:6:1", "hots"]);
    std::fs::write(
        &config,
        "[app]\nname = \"shop\"\n\n[env.prod.registry]\nprovider = \"ecr\"\n",
    )
    .unwrap();
    let out = ferry(
        &["image", "ls", "web", "--env", "prod", "--config", &cfg],
        None,
        &[],
    );
    assert_exit(&out, 3, &["needs a host"]);
}

#[test]
fn copy_tag_resolve_ls_and_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 4, 3000);
    let reg = noauth();
    let staging = repo("staging");
    let prod = repo("prod");
    json(&ferry(
        &[
            "image",
            "push",
            &layout.source("latest"),
            &format!("{reg}/{staging}:staging-latest"),
            "-o",
            "json",
        ],
        None,
        &[],
    ));

    let out = ferry(
        &[
            "image",
            "copy",
            &format!("{reg}/{staging}:staging-latest"),
            &format!("{reg}/{prod}:v1.2.3"),
            "--tag",
            "prod-latest",
            "-o",
            "json",
        ],
        None,
        &[],
    );
    let report = json(&out);
    assert_eq!(report["digest"], layout.digest.to_string());
    assert_eq!(report["blobs"]["mounted"], 5);
    assert_eq!(report["blob_bytes_uploaded"], 0);

    let out = ferry(
        &["image", "resolve", &format!("{reg}/{prod}:prod-latest")],
        None,
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        layout.digest.to_string()
    );

    let out = ferry(
        &[
            "image",
            "tag",
            &format!("{reg}/{prod}@{}", layout.digest),
            "rollback-target",
            "extra",
        ],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = ferry(&["image", "ls", &format!("{reg}/{prod}")], None, &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "extra\nprod-latest\nrollback-target\nv1.2.3\n"
    );

    let info = json(&ferry(
        &[
            "image",
            "inspect",
            &format!("{reg}/{prod}:v1.2.3"),
            "-o",
            "json",
        ],
        None,
        &[],
    ));
    assert_eq!(info["kind"], "image");
    assert_eq!(info["layers"].as_array().unwrap().len(), 4);
    assert_eq!(info["config_summary"]["architecture"], "amd64");
    let out = ferry(
        &["image", "inspect", &format!("{reg}/{prod}:v1.2.3")],
        None,
        &[],
    );
    assert!(
        text(&out).contains("linux/amd64") && text(&out).contains("layers      4"),
        "{}",
        text(&out)
    );
}

/// `ferry image ls --env` on an ACR environment: ferry-auth's Azure AD token (client secret,
/// from a wiremock Azure AD) is exchanged at the registry's `/oauth2/exchange` and
/// `/oauth2/token` (a wiremock ACR: ACR cannot run here); no secret or token reaches the output.
#[cfg(feature = "acr")]
#[test]
fn acr_login_from_the_environments_azure_credentials() {
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (aad, acr) = rt.block_on(async {
        let aad = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/tenant-1/oauth2/v2.0/token"))
            .and(body_string_contains(
                "client_secret=azure-client-secret-value",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "token_type": "Bearer", "expires_in": 3599, "access_token": "aad-token-value"
            })))
            .mount(&aad)
            .await;
        let acr = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/"))
            .and(header("authorization", "Bearer acr-access-value"))
            .respond_with(ResponseTemplate::new(200))
            .with_priority(1)
            .mount(&acr)
            .await;
        // Like ACR, every request without the access token gets the challenge.
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                format!(
                    r#"Bearer realm="{}/oauth2/token",service="{}""#,
                    acr.uri(),
                    acr.address()
                ),
            ))
            .mount(&acr)
            .await;
        Mock::given(method("POST"))
            .and(path("/oauth2/exchange"))
            .and(body_string_contains("access_token=aad-token-value"))
            .and(body_string_contains("tenant=tenant-1"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"refresh_token": "acr-refresh-value"})),
            )
            .mount(&acr)
            .await;
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .and(body_string_contains("refresh_token=acr-refresh-value"))
            .and(body_string_contains("repository%3Ashop%2Fweb%3Apull"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"access_token": "acr-access-value"})),
            )
            .mount(&acr)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/shop/web/tags/list"))
            .and(header("authorization", "Bearer acr-access-value"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"name": "shop/web", "tags": ["v2", "v1"]})),
            )
            .with_priority(1)
            .mount(&acr)
            .await;
        (aad, acr)
    });
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "[app]\nname = \"shop\"\n\n[env.prod.registry]\nprovider = \"acr\"\nhost = \"{}\"\nprefix = \"shop\"\n\n\
             [env.prod.auth.azure]\ntenant_id = \"tenant-1\"\nclient_id = \"client-1\"\n\
             credentials = \"secret\"\nauthority = \"{}\"\nmax_attempts = 1\n",
            acr.address(),
            aad.uri(),
        ),
    )
    .unwrap();
    let cfg = config.display().to_string();
    let args = [
        "image", "ls", "web", "--env", "prod", "--config", &cfg, "-vvv",
    ];
    let out = ferry(
        &args,
        None,
        &[("AZURE_CLIENT_SECRET", "azure-client-secret-value")],
    );
    let all = text(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v1\nv2\n", "{all}");
    for secret in [
        "azure-client-secret-value",
        "aad-token-value",
        "acr-refresh-value",
        "acr-access-value",
    ] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }

    // No client secret: the environment's Azure setup is named, exit 11, nothing asked of ACR.
    let before = rt.block_on(acr.received_requests()).unwrap().len();
    let out = ferry(&args, None, &[]);
    assert_exit(&out, 11, &["AZURE_CLIENT_SECRET"]);
    assert_eq!(rt.block_on(acr.received_requests()).unwrap().len(), before);
}

#[cfg(feature = "ecr")]
#[test]
fn ecr_login_from_the_environments_aws_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path(), 2, 2000);
    let config = tmp.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "[app]\nname = \"shop\"\n\n[env.dev.registry]\nprovider = \"ecr\"\nhost = \"{}\"\nprefix = \"{}\"\n\n\
             [env.dev.auth.aws]\ncredentials = \"static\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n",
            ferry_testkit::server("FERRY_TEST_REGISTRY_ECR"),
            repo("ecr"),
            ferry_testkit::server("FERRY_TEST_MOTO"),
        ),
    )
    .unwrap();
    let cfg = config.display().to_string();
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDFERRYTEST"),
        ("AWS_SECRET_ACCESS_KEY", "ferry-aws-secret-value"),
        ("FERRY_LOG", "trace"),
    ];
    let out = ferry(
        &[
            "image",
            "push",
            &layout.source("latest"),
            "web:v1",
            "--env",
            "dev",
            "--config",
            &cfg,
            "-o",
            "json",
            "-vvv",
        ],
        None,
        &env,
    );
    let all = text(&out);
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode("AWS:123456789012-auth-token");
    assert!(
        !all.contains("ferry-aws-secret-value")
            && !all.contains("123456789012-auth-token")
            && !all.contains(&token),
        "{all}"
    );
    let report = json(&out);
    assert_eq!(report["digest"], layout.digest.to_string());

    // A mistake in the environment's AWS setup is located in ferry.toml, and nothing moves.
    let text_before = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_before.replace("region = \"us-east-1\"", "region = \"\""),
    )
    .unwrap();
    let out = ferry(
        &[
            "image",
            "push",
            &layout.source("latest"),
            "web:v2",
            "--env",
            "dev",
            "--config",
            &cfg,
        ],
        None,
        &env,
    );
    assert_exit(&out, 3, &["ferry.toml:11:10", "auth.aws.region"]);
}

#[test]
fn build_with_buildah_then_push() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    let mut dockerfile = String::from("FROM scratch\n");
    for i in 0..4 {
        std::fs::write(
            ctx.join(format!("f{i}")),
            noise(u64::from(std::process::id()) + i, 20_000),
        )
        .unwrap();
        dockerfile.push_str(&format!("COPY f{i} /f{i}\n"));
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let reg = noauth();
    let path = repo("built");
    let storage = tmp.path().join("storage").display().to_string();
    let out = ferry(
        &[
            "build",
            &ctx.display().to_string(),
            "--push",
            &format!("{reg}/{path}:3f2c1e9"),
            "--tag",
            "latest",
            "--storage",
            &storage,
            "-o",
            "json",
        ],
        None,
        &[],
    );
    let report = json(&out);
    assert_eq!(report["blobs"]["total"], 5, "config + 4 layers: {report}");
    let digest = report["digest"].as_str().unwrap();
    assert_eq!(skopeo_digest(&reg, &format!("{path}:latest"), None), digest);
    let raw: serde_json::Value =
        serde_json::from_slice(&skopeo_raw(&reg, &format!("{path}:3f2c1e9"), None)).unwrap();
    assert_eq!(raw["layers"].as_array().unwrap().len(), 4);
}

#[test]
fn build_without_any_builder_says_what_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let empty = tmp.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let out = ferry(
        &[
            "build",
            &tmp.path().display().to_string(),
            "--push",
            &format!("{}/x:v1", noauth()),
        ],
        None,
        &[("PATH", &empty.display().to_string())],
    );
    assert_exit(&out, 1, &["no container builder found", "buildah"]);
    // No Dockerfile: invalid input, before looking for a builder.
    let out = ferry(
        &["build", &empty.display().to_string(), "--push", "x:v1"],
        None,
        &[],
    );
    assert_exit(&out, 3, &[]);
}
