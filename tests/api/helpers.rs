//! `spawn_app()` and what tests share: a fresh database per test (PostgreSQL by default, SQLite on
//! request), the real application on port 0, and an MCP client speaking Streamable HTTP.

use std::sync::Mutex;
use std::time::Duration;

use actix_rt::task::JoinHandle;
use actix_web::dev::ServerHandle;
use actix_web::web;
use diesel::{Connection, PgConnection, RunQueryDsl};
use mcpgate::configuration::Settings;
use mcpgate::connector::ConnectorSettings;
use mcpgate::gateway::Gateway;
use mcpgate::startup::Application;
use serde_json::{json, Value};

/// The server that holds the per-test databases. Without TLS by default: every test's gateway
/// keeps connecting in the background until the binary exits, and a connection negotiating
/// TLS as the process exits can crash it while OpenSSL is being torn down.
pub fn postgres_admin_url() -> String {
    std::env::var("MCPGATE_TEST_DATABASE_URL").unwrap_or_else(|_| {
        "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".to_string()
    })
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Postgres,
    Sqlite,
}

/// A database that exists for one test and is dropped after it.
pub enum TestDatabase {
    Postgres {
        name: String,
        url: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    /// Another test app's database: not dropped by this one.
    Shared {
        url: String,
    },
}

impl TestDatabase {
    pub fn create(kind: StoreKind) -> TestDatabase {
        match kind {
            StoreKind::Postgres => {
                let name = format!("mcpgate_test_{}", uuid::Uuid::new_v4().simple());
                let admin = postgres_admin_url();
                let mut conn = PgConnection::establish(&admin).expect("PostgreSQL is reachable");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let (path, query) = admin.split_once('?').unwrap_or((admin.as_str(), ""));
                let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                let url = format!("{base}/{name}{query}");
                TestDatabase::Postgres { name, url }
            }
            StoreKind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("mcpgate.db").display());
                TestDatabase::Sqlite { _dir: dir, url }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Postgres { url, .. }
            | TestDatabase::Sqlite { url, .. }
            | TestDatabase::Shared { url } => url,
        }
    }

    /// Runs SQL on the server as the admin (PostgreSQL only).
    pub fn admin_sql(&self, sql: &str) {
        let mut conn = PgConnection::establish(&postgres_admin_url()).expect("admin connection");
        diesel::sql_query(sql)
            .execute(&mut conn)
            .expect("admin SQL");
    }

    /// Makes the database refuse connections and ends the open ones (PostgreSQL only).
    pub fn take_offline(&self) {
        let TestDatabase::Postgres { name, .. } = self else {
            panic!("only PostgreSQL databases go offline")
        };
        self.admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
        self.admin_sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ));
    }

    /// Lets connections in again (PostgreSQL only).
    pub fn bring_online(&self) {
        if let TestDatabase::Postgres { name, .. } = self {
            self.admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { name, .. } = self {
            if let Ok(mut conn) = PgConnection::establish(&postgres_admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

/// The settings every test starts from: `config/default.yaml`, port 0, one worker.
pub fn test_settings(database_url: &str) -> Settings {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy("config/default.yaml", dir.path().join("default.yaml")).expect("copy defaults");
    let mut settings = Settings::load(dir.path()).expect("default settings load");
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.database.url = database_url.to_string();
    settings.database.pool_size = 2;
    settings.recorder.flush_interval_ms = 50;
    settings.feedback.tool_name = String::new();
    settings.trainer.enabled = false;
    settings.trainer.check_interval_ms = 100;
    // Gateways of one test share a store "as after a restart" while the first still runs.
    settings.trainer.lease_ms = 0;
    settings.recorder.max_retry_interval_ms = 200;
    settings
}

/// A connector entry for `url`.
pub fn connector(name: &str, url: &str) -> ConnectorSettings {
    serde_json::from_value(json!({"name": name, "url": url, "timeout_ms": 2000,
        "health_check_interval_ms": 200, "health_check_timeout_ms": 1000}))
    .expect("connector settings")
}

/// A running gateway. The database field is last so that it drops last.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub gateway: web::Data<Gateway>,
    /// Stops the server, and the task that serves until then and shuts the gateway down.
    running: (ServerHandle, Mutex<Option<JoinHandle<std::io::Result<()>>>>),
    pub db: TestDatabase,
}

/// A gateway on PostgreSQL in front of `connectors`.
pub async fn spawn_app(connectors: Vec<ConnectorSettings>) -> TestApp {
    spawn_app_with(StoreKind::Postgres, |s| s.connectors = connectors).await
}

/// A gateway on `store`, with settings changed by `tweak`; waits until its catalog is loaded.
pub async fn spawn_app_with(store: StoreKind, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    start(TestDatabase::create(store), tweak).await
}

/// A second gateway on `other`'s database, as after a restart.
pub async fn spawn_app_sharing(other: &TestApp, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let url = other.db.url().to_string();
    start(TestDatabase::Shared { url }, tweak).await
}

async fn start(db: TestDatabase, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut settings = test_settings(db.url());
    tweak(&mut settings);
    let application = Application::build(settings)
        .await
        .expect("application builds");
    let port = application.port();
    let gateway = application.gateway();
    let handle = application.handle();
    let task = actix_rt::spawn(application.run_until_stopped());
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client"),
        gateway,
        running: (handle, Mutex::new(Some(task))),
        db,
    };
    app.wait_until(|app| app.gateway.catalog.load().loaded)
        .await;
    app
}

impl TestApp {
    /// Stops the gateway as a deploy does (gracefully), and waits until it has shut down; its
    /// database stays.
    pub async fn stop(&self) {
        let (handle, task) = &self.running;
        handle.stop(true).await;
        let task = task.lock().unwrap().take();
        if let Some(task) = task {
            task.await
                .expect("the gateway's task ends")
                .expect("it served");
        }
    }

    /// Polls `check` every 20 ms for up to 10 s.
    pub async fn wait_until(&self, check: impl Fn(&TestApp) -> bool) {
        for _ in 0..500 {
            if check(self) {
                return;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("condition not met within 10 s");
    }

    /// Reads `read` every 50 ms until what it reads passes `done`, at most 200 times (10 s, as
    /// [`TestApp::wait_until`]); returns the last reading.
    pub async fn read_until<T, F: std::future::Future<Output = T>>(
        read: impl Fn() -> F,
        done: impl Fn(&T) -> bool,
    ) -> T {
        let mut value = read().await;
        for _ in 1..200 {
            if done(&value) {
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
            value = read().await;
        }
        value
    }

    /// `DELETE /mcp`: ends `session`.
    pub async fn end_session(&self, session: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}/mcp", self.address))
            .header("mcp-session-id", session)
            .send()
            .await
            .expect("DELETE /mcp")
    }

    /// `POST /mcp` with a raw body and extra headers.
    pub async fn post_mcp(&self, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.post_at("/mcp", body, headers).await
    }

    /// A `POST` of `body` to the Streamable HTTP endpoint at `path`, with the headers a client
    /// sends, to add more to.
    pub fn mcp_request(&self, path: &str, body: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string())
    }

    /// `POST` to a Streamable HTTP endpoint at `path` with a raw body and extra headers.
    pub async fn post_at(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.mcp_request(path, body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("POST /mcp")
    }

    /// Opens a Streamable HTTP session: `initialize` then `notifications/initialized`.
    pub async fn initialize(&self) -> String {
        self.initialize_at("/mcp").await
    }

    /// Opens a Streamable HTTP session on the endpoint at `path`.
    pub async fn initialize_at(&self, path: &str) -> String {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}}});
        let response = self.post_at(path, &body.to_string(), &[]).await;
        assert_eq!(response.status(), 200);
        let session = response
            .headers()
            .get("mcp-session-id")
            .expect("session header")
            .to_str()
            .unwrap()
            .to_string();
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self
            .post_at(path, &note.to_string(), &[("mcp-session-id", &session)])
            .await;
        assert_eq!(response.status(), 202);
        session
    }

    /// One request in `session`; returns the whole JSON-RPC response.
    pub async fn rpc(&self, session: &str, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .post_mcp(&body.to_string(), &[("mcp-session-id", session)])
            .await;
        assert_eq!(response.status(), 200, "{method}");
        let is_stream = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
        if !is_stream {
            return response.json().await.expect("JSON-RPC response");
        }
        let text = response.text().await.expect("event stream");
        let answer = text
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .find(|message| message.get("id").is_some() && message.get("method").is_none());
        answer.expect("an answer on the event stream")
    }

    /// How many rows `table` of the store holds (`table` may go on with a `WHERE` clause).
    pub async fn rows(&self, table: &'static str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let count = mcpgate::store::blocking(&self.gateway.pool, move |conn| {
            use diesel::RunQueryDsl;
            let query = format!("SELECT count(*) AS n FROM {table}");
            diesel::sql_query(query).get_result::<Count>(conn)
        });
        count.await.expect("the store answers").n
    }

    /// `GET` on the ops API or another path; returns status and JSON body (or Null).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The Prometheus exposition served on `/metrics`.
    pub async fn metrics_text(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("GET /metrics");
        response.text().await.expect("metrics body")
    }

    /// A request with a JSON body to the ops API; returns status and JSON body (or Null).
    pub async fn send_json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = self
            .client
            .request(method, format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Exposed tool names, as a session lists them.
    pub async fn tool_names(&self, session: &str) -> Vec<String> {
        let list = self.rpc(session, "tools/list", json!({})).await;
        list["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// The description of `tool`, as a session lists it (`null` when it is not listed).
    pub async fn tool_description(&self, session: &str, tool: &str) -> Value {
        self.listed_tool(session, tool).await["description"].clone()
    }

    /// `tool` as `tools/list` gives it to `session` (`null` when it is not listed).
    pub async fn listed_tool(&self, session: &str, tool: &str) -> Value {
        let list = self.rpc(session, "tools/list", json!({})).await;
        list["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .find(|t| t["name"] == tool)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The number of stored tool call records.
    pub fn stored_calls(&self) -> i64 {
        let mut conn = self.gateway.pool.get().expect("store connection");
        mcpgate::store::tool_calls::count(&mut conn).expect("count")
    }
}

/// Starts a one-worker HTTP server on a free loopback port with the routes `configure` adds
/// (a test double of a system the gateway talks to); returns the port.
pub fn serve_local(configure: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("its address").port();
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("listen")
            .run();
    actix_rt::spawn(server);
    port
}
