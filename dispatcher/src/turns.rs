//! Turns: the steps of concurrent requests that must happen in the order the requests took
//! their turn — storing events in history and handing them to the gateways — while the waits
//! between those steps overlap.

use std::sync::Mutex;
use tokio::sync::oneshot;

/// A queue of turns; each turn comes after the one taken before it.
#[derive(Default)]
pub(crate) struct Turns {
    last: Mutex<Option<oneshot::Receiver<()>>>,
}

/// One request's place in a [`Turns`] queue: [`Turn::wait`] returns once every earlier turn was
/// dropped; dropping this one lets the next go.
pub(crate) struct Turn {
    earlier: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Turns {
    /// The next turn, after every turn taken so far.
    pub(crate) fn take(&self) -> Turn {
        let (done, mine) = oneshot::channel();
        let earlier = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(mine);
        Turn {
            earlier,
            _done: done,
        }
    }
}

impl Turn {
    /// Waits until every earlier turn is over.
    pub(crate) async fn wait(&mut self) {
        if let Some(earlier) = self.earlier.take() {
            // Ok or Err: either way the earlier turn is over (its sender was dropped).
            let _ = earlier.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn turns_go_in_the_order_they_were_taken() {
        let turns = Turns::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Taken 0..8, started in reverse: each still goes after the one taken before it.
        let taken: Vec<Turn> = (0..8).map(|_| turns.take()).collect();
        for (n, mut turn) in taken.into_iter().enumerate().rev() {
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                turn.wait().await;
                order.lock().unwrap().push(n);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    }
}
