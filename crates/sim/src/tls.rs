//! The cluster CA and the API server's certificate, generated at start (rcgen), and the rustls
//! server configuration (aws-lc-rs provider, ALPN h2 and http/1.1 as kube-apiserver offers).

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::SimError;

/// A CA and a server certificate it signed.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

fn tls_error(err: impl std::fmt::Display) -> SimError {
    SimError::Tls {
        message: err.to_string(),
    }
}

/// A CA and a server certificate for the names and addresses clients use: `localhost`, both
/// loopback addresses (a server on an unspecified address is reached through the loopback of
/// its family), the in-cluster names of the `kubernetes` Service, and `listen` when it is a
/// specific address.
pub(crate) fn generate(listen: IpAddr) -> Result<Pki, SimError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "ferry-sim-ca");
    ca_params.distinguished_name = name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(tls_error)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_error)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
        "kubernetes.default.svc.cluster.local".to_owned(),
    ];
    // A specific listen address (127.0.0.2, a LAN address) is what the kubeconfig names.
    let listen_name = listen.to_string();
    if !listen.is_unspecified() && !names.contains(&listen_name) {
        names.push(listen_name);
    }
    let mut params = CertificateParams::new(names).map_err(tls_error)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "ferry-sim-apiserver");
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(tls_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(tls_error)?;
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    })
}

pub(crate) fn acceptor(pki: &Pki) -> Result<tokio_rustls::TlsAcceptor, SimError> {
    // ring, not aws-lc-rs: the simulator (and the deploy engine that embeds it) needs no aws-* crate.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(
            vec![pki.cert.clone()],
            PrivateKeyDer::Pkcs8(pki.key.clone_key()),
        )
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
