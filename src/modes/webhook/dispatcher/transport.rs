//! How an attempt reaches its endpoint and what comes back.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;

use crate::server::sockets::CountingConnector;

/// How attempts reach their endpoints: hyper over TCP, or, in the tests that run on tokio's
/// paused clock, a scripted receiver that answers without a socket.
pub(crate) enum Transport {
    Http(Client<CountingConnector, Full<Bytes>>),
    #[cfg(test)]
    Scripted(super::tests::Script),
}

impl Transport {
    /// Sends one attempt and reads its answer: the status and, on 429 or 503, the
    /// `Retry-After` it carried.
    pub(super) async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, Option<Duration>)> {
        match self {
            Transport::Http(client) => {
                let res = client.request(req).await?;
                let status = res.status();
                let asked = match status {
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => res
                        .headers()
                        .get(hyper::header::RETRY_AFTER)
                        .and_then(crate::modes::http::retry_after),
                    _ => None,
                };
                // Read the answer to the end so the connection goes back to the pool.
                res.into_body().collect().await?;
                Ok((status, asked))
            }
            #[cfg(test)]
            Transport::Scripted(script) => script(req).await,
        }
    }
}
