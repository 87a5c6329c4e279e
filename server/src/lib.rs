//! The Roundtable server: HTTP API, Yjs sync over WebSocket, storage, and the built
//! browser client, in one process on one port. See `docs/ARCHITECTURE.md`.

pub mod api;
pub mod auth;
pub mod config;
pub mod doctor;
pub mod door;
pub mod error;
pub mod listen;
pub mod state;
pub mod storage;
pub mod sync;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::get;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::Config;
use state::AppState;
use storage::Storage;
use sync::rooms::Rooms;

/// Largest JSON body the API accepts.
const MAX_BODY_BYTES: usize = 64 * 1024;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The whole application, given its state. Shared by `main` and the tests.
pub fn app(state: AppState) -> Router {
    let index = state.config.client_dir.join("index.html");
    // The build writes a gzip twin of every file; browsers that accept gzip get it.
    let client = ServeDir::new(&state.config.client_dir)
        .precompressed_gzip()
        .fallback(ServeFile::new(index).precompressed_gzip());
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    Router::new()
        .route("/health", get(health))
        .merge(api::router(&state))
        .fallback_service(client)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.config.limits.request_timeout,
            in_time,
        ))
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        // Served over TLS (behind a proxy, as `--public-url https://…` says): browsers
        // must keep to https for two years.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            state
                .config
                .secure_cookies()
                .then(|| HeaderValue::from_static("max-age=63072000; includeSubDomains")),
        ))
        .with_state(state)
}

/// Answers 408 to a request that takes longer than `limit`, its body included: a
/// body sent a byte at a time must not hold a connection for ever. A WebSocket or an
/// event stream counts only until it starts.
async fn in_time(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error::ApiError::TooSlow.into_response(),
    }
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets open requests finish, stores what is pending, closes the database.
    pub async fn stop(self) -> std::io::Result<()> {
        // WebSockets stay open until told to close; graceful shutdown waits for them.
        self.state.rooms.close_all().await;
        self.state.notices.close_all();
        let _ = self.shutdown.send(true);
        let result = self.task.await.unwrap_or(Ok(()));
        self.state.door.hasher.stop();
        self.state.door.tally.summarise_now();
        self.state.rooms.flush().await;
        self.state.storage.close().await;
        result
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

/// Opens storage, runs migrations, binds and starts serving.
pub async fn start(mut config: Config) -> Result<Running, StartError> {
    // Join links name where people reach the server: the public URL, or else the
    // address it listens on, which must then be one people can reach.
    if config.public_url.is_none() && config.listen.ip().is_unspecified() {
        return Err(StartError::NoPublicUrl(config.listen));
    }
    // Node names are words in the notices nodes send each other.
    if let Some(name) = &config.node_name
        && (name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(StartError::BadNodeName(name.clone()));
    }
    let location = config.database()?;
    if let storage::Location::Sqlite(_) = location {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let storage = Storage::open(&location).await?;
    let node = storage.nodes().map(|_| {
        let name = config
            .node_name
            .clone()
            .unwrap_or_else(sync::cluster::ClusterConfig::default_node_name);
        sync::cluster::ClusterConfig::new(&name)
    });
    let rooms = Arc::new(Rooms::with_node(
        storage.clone(),
        config.limits.clone(),
        node,
    ));
    rooms.start();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    // The port the system chose, if it was asked for port 0.
    config.listen = addr;
    let door = Arc::new(door::Door::new(config.door.clone()));
    let state = AppState {
        storage,
        rooms,
        config: Arc::new(config),
        notices: Arc::new(state::Notices::default()),
        door: Arc::clone(&door),
    };
    // What another node changed in the scales reaches the phones connected here.
    if let Some(cluster) = state.rooms.cluster() {
        let mut elsewhere = cluster.scales_elsewhere();
        let notices = Arc::clone(&state.notices);
        tokio::spawn(async move {
            loop {
                match elsewhere.recv().await {
                    Ok(conference) => notices.notify(conference),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    let router = app(state.clone());
    let (shutdown, stopped) = tokio::sync::watch::channel(false);
    let limits = state.config.limits.clone();
    let task = tokio::spawn(async move {
        let summaries = summarise_refusals(Arc::clone(&door));
        let served = listen::serve(listener, router, &limits, door, stopped);
        tokio::select! {
            served = served => served,
            never = summaries => match never {},
        }
    });
    tracing::info!(%addr, "Roundtable is listening");
    Ok(Running {
        addr,
        state,
        shutdown,
        task,
    })
}

/// Writes the log's summary of refused attempts once each period.
async fn summarise_refusals(door: Arc<door::Door>) -> std::convert::Infallible {
    let mut every = tokio::time::interval(door.settings.log_period);
    loop {
        every.tick().await;
        door.tally.flush();
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    DatabaseUrl(#[from] config::BadDatabaseUrl),
    #[error(
        "listening on {0} needs --public-url, the address people reach Roundtable at: join links name it"
    )]
    NoPublicUrl(SocketAddr),
    #[error("the node's name {0:?} must be 1 to 64 letters, digits or punctuation, without spaces")]
    BadNodeName(String),
}
