//! The CLI as a client of a running server: with `--server` (and a token), `iris trace`, `iris sql` and
//! `iris me` go through the HTTP API, so they are decided, scoped and logged like any request. Without
//! it they run locally as the operator who holds the data directory.

use iris_query::OutputFormat;
use serde_json::Value;

/// Where and as whom to ask.
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Ask this server (http://host:port) instead of reading the store directly.
    #[arg(long, env = "IRIS_SERVER")]
    pub server: Option<String>,
    /// Bearer token for --server.
    #[arg(long, env = "IRIS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Deliberation an inspector acts under (with --server).
    #[arg(long)]
    pub deliberation: Option<String>,
    /// Case reference (with --server).
    #[arg(long = "case")]
    pub case_ref: Option<String>,
}

/// A server and a token.
pub struct Remote {
    server: String,
    token: String,
    client: reqwest::Client,
    pub deliberation: Option<String>,
    pub case_ref: Option<String>,
}

impl RemoteArgs {
    /// The remote, if `--server` was given (then a token is required).
    pub fn remote(&self) -> anyhow::Result<Option<Remote>> {
        let Some(server) = &self.server else {
            if self.deliberation.is_some() || self.case_ref.is_some() {
                anyhow::bail!(
                    "--deliberation and --case go with --server (local runs are the operator's)"
                );
            }
            return Ok(None);
        };
        let Some(token) = &self.token else {
            anyhow::bail!("--server needs --token (or IRIS_TOKEN)");
        };
        Ok(Some(Remote {
            server: server.trim_end_matches('/').to_owned(),
            token: token.clone(),
            client: reqwest::Client::new(),
            deliberation: self.deliberation.clone(),
            case_ref: self.case_ref.clone(),
        }))
    }
}

impl Remote {
    /// GET `path` with a query string; the JSON answer, or the server's reason as the error.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        answer(self.send_get(path, query).await).await
    }

    async fn send_get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> reqwest::Result<reqwest::Response> {
        self.client
            .get(format!("{}{path}", self.server))
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .await
    }

    async fn send_post(&self, path: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(format!("{}{path}", self.server))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
    }

    /// POST a JSON body to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        answer(self.send_post(path, body).await).await
    }
}

impl Remote {
    /// GET `path`; the answer's bytes as they come (CSV, text, Parquet), or the server's reason.
    pub async fn get_bytes(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Vec<u8>> {
        bytes(self.send_get(path, query).await).await
    }

    /// POST a JSON body; the answer's bytes.
    pub async fn post_bytes(&self, path: &str, body: &Value) -> anyhow::Result<Vec<u8>> {
        bytes(self.send_post(path, body).await).await
    }
}

async fn bytes(r: reqwest::Result<reqwest::Response>) -> anyhow::Result<Vec<u8>> {
    let r = r.map_err(|e| anyhow::anyhow!("cannot reach the server: {e}"))?;
    if r.status().is_success() {
        return Ok(r.bytes().await?.to_vec());
    }
    answer(Ok(r)).await.map(|_| Vec::new())
}

async fn answer(r: reqwest::Result<reqwest::Response>) -> anyhow::Result<Value> {
    let r = r.map_err(|e| anyhow::anyhow!("cannot reach the server: {e}"))?;
    let status = r.status();
    let body: Value = r
        .json()
        .await
        .map_err(|e| anyhow::anyhow!("the server's answer ({status}) is not JSON: {e}"))?;
    if !status.is_success() {
        let why = body["error"].as_str().unwrap_or("no reason given");
        let policies = body["policies"]
            .as_array()
            .map(|p| {
                let ids: Vec<_> = p.iter().filter_map(Value::as_str).collect();
                format!(" [{}]", ids.join(", "))
            })
            .unwrap_or_default();
        anyhow::bail!("{status}: {why}{policies}");
    }
    Ok(body)
}

/// Prints JSON rows in the chosen format; returns how many there were.
pub fn print_rows(rows: &Value, format: OutputFormat) -> anyhow::Result<usize> {
    let rows = rows.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        if !matches!(format, OutputFormat::Table) {
            println!(
                "{}",
                if matches!(format, OutputFormat::Json) {
                    "[]"
                } else {
                    ""
                }
            );
        }
        return Ok(0);
    }
    let schema = arrow::json::reader::infer_json_schema_from_iterator(rows.iter().map(Ok))?;
    let mut decoder =
        arrow::json::ReaderBuilder::new(std::sync::Arc::new(schema)).build_decoder()?;
    decoder.serialize(&rows)?;
    let batch = decoder
        .flush()?
        .ok_or_else(|| anyhow::anyhow!("no rows decoded"))?;
    println!("{}", iris_query::render(&[batch], format)?);
    Ok(rows.len())
}
