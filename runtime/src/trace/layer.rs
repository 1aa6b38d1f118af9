//! `tracing` integration (cargo feature `tracing`): spans entered inside a
//! traced task become regions of that task.

use tracing::span::Id;
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// A `tracing-subscriber` layer that records every span entered inside a
/// task of a runtime with tracing on as a region of that task, named after
/// the span (see [`region`](super::region)). Outside traced tasks it does
/// nothing.
///
/// # Examples
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry().with(pinstack::trace::PinstackLayer::new());
/// tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
/// let rt = pinstack::Runtime::builder().tracing(true).build()?;
/// rt.block_on(|| tracing::info_span!("handshake").in_scope(|| 1 + 1));
/// let json = rt.trace().expect("tracing is on").to_chrome_json();
/// # let _ = json;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct PinstackLayer {
    _private: (),
}

impl PinstackLayer {
    /// A new layer.
    pub fn new() -> PinstackLayer {
        PinstackLayer::default()
    }
}

impl<S> Layer<S> for PinstackLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(meta) = ctx.metadata(id) {
            super::region::begin(meta.name());
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(meta) = ctx.metadata(id) {
            super::region::end(meta.name());
        }
    }
}
