//! Connecting to the store: TLS with rustls as `sslmode` says, and what went wrong said in an
//! operator's words (a wrong password, a database that does not exist, a host that cannot be
//! reached) instead of the driver's.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode as PgSsl;

use super::StoreError;
use super::config::{SslMode, StoreConfig};

/// Opens a connection; its I/O runs on a task of its own, which ends with the `Client`.
pub async fn connect(cfg: &StoreConfig) -> Result<tokio_postgres::Client, StoreError> {
    open(cfg, None).await
}

/// `connect`, with the notifications of its `LISTEN`s sent to `notices` (until either end goes).
pub async fn connect_listening(
    cfg: &StoreConfig,
    notices: tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>,
) -> Result<tokio_postgres::Client, StoreError> {
    open(cfg, Some(notices)).await
}

async fn open(
    cfg: &StoreConfig,
    notices: Option<tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>>,
) -> Result<tokio_postgres::Client, StoreError> {
    let mut pg = cfg.pg.clone();
    let result = match cfg.ssl {
        SslMode::Disable => {
            pg.ssl_mode(PgSsl::Disable);
            pg.connect(tokio_postgres::NoTls).await.map(|(client, conn)| {
                tokio::spawn(drive(conn, notices));
                client
            })
        }
        mode => {
            pg.ssl_mode(if mode == SslMode::Prefer {
                PgSsl::Prefer
            } else {
                PgSsl::Require
            });
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(cfg)?);
            pg.connect(tls).await.map(|(client, conn)| {
                tokio::spawn(drive(conn, notices));
                client
            })
        }
    };
    result.map_err(|e| explain(cfg, &e))
}

/// Runs a connection's I/O; hands its notifications on when someone listens.
async fn drive<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
    notices: Option<tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(notices) = notices else {
        let _ = conn.await;
        return;
    };
    while let Some(Ok(message)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
        if let tokio_postgres::AsyncMessage::Notification(n) = message
            && notices.send(n).is_err()
        {
            // Nobody listens any more: the connection still serves its client.
            let _ = conn.await;
            return;
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `verify-full`: the server's certificate chains to `sslrootcert` (else the public roots) and
/// names the host. `prefer` and `require`: encrypted, the certificate not checked (as libpq).
fn tls_config(cfg: &StoreConfig) -> Result<rustls::ClientConfig, StoreError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Message(format!("TLS: {e}")))?;
    let config = if cfg.ssl == SslMode::VerifyFull {
        let mut roots = rustls::RootCertStore::empty();
        match &cfg.root_cert {
            Some(path) => {
                use rustls::pki_types::pem::PemObject as _;
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        StoreError::Message(format!("cannot read sslrootcert {}: {e}", path.display()))
                    })?;
                if certs.is_empty() {
                    return Err(StoreError::Message(format!(
                        "sslrootcert {} holds no certificate",
                        path.display()
                    )));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| StoreError::Message(format!("sslrootcert {}: {e}", path.display())))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider())))
            .with_no_client_auth()
    };
    Ok(config)
}

/// `sslmode=prefer`/`require`: any certificate is accepted (libpq's meaning of these modes);
/// the handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The driver's error in an operator's words, naming the store (never its password).
pub fn explain(cfg: &StoreConfig, e: &tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    let at = cfg.display();
    let user = cfg.pg.get_user().unwrap_or("?");
    let db = cfg.pg.get_dbname().unwrap_or(user);
    if let Some(code) = e.code() {
        let detail = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        let message = if *code == SqlState::INVALID_PASSWORD {
            format!("the store {at} refused the password of user {user} (wrong password?)")
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            format!("the store's database {db} does not exist on {at} (create it: createdb -O {user} {db})")
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            format!("the store {at} does not let user {user} in: {detail}")
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            format!("the store {at}: user {user} lacks a privilege: {detail}")
        } else {
            format!("the store {at}: {detail}")
        };
        return StoreError::Message(message);
    }
    let text = chain(e);
    if text.contains("password missing") {
        return StoreError::Message(format!(
            "the store {at} asks for user {user}'s password: put it in the URL, in a file named by \
             store_password_file (config.toml) or RUNBOOK_STORE_PASSWORD_FILE, or in PGPASSFILE"
        ));
    }
    if text.contains("server does not support TLS") || text.contains("does not support SSL") {
        return StoreError::Message(format!(
            "the store {at} does not offer TLS, and sslmode requires it"
        ));
    }
    if let Some(at_cert) = text.find("invalid peer certificate") {
        return StoreError::Message(format!(
            "the store {at} showed a TLS certificate that sslmode=verify-full does not accept ({}); \
             check sslrootcert and the host name in the URL",
            &text[at_cert..]
        ));
    }
    StoreError::Unreachable(format!("cannot reach the store {at}: {text}"))
}

/// An error and its causes, as one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
