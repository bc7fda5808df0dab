//! Fewer copies over the whole wire (docs/using.md, "Fewer copies"): the deployed routers and
//! worker, DynamoDB and SQS on moto, the Graph API as an HTTP fake that counts what reached
//! each agent. After Claim one copy per text; an agent `/away` gets none; `/unclaim` gives
//! the conversation back to everyone on duty.

use crate::common;

use bridge_testkit::testing::{AGENTS, CUSTOMER, whatsapp_text};
use common::{Bridge, copies, pressed};

/// How many copies of customer texts each agent has received so far.
async fn copies_received(bridge: &Bridge) -> [usize; 2] {
    let mut counts = [0; 2];
    for (n, agent) in AGENTS.iter().enumerate() {
        counts[n] = copies(&bridge.sent_to(agent).await).len();
    }
    counts
}

#[tokio::test]
async fn after_claim_one_copy_per_text_and_an_agent_away_gets_none() {
    // `/away` and `/back` at once, not within the warm webhook's 30 s (docs/configuration.md).
    let bridge = Bridge::with_env(&[("DUTY_ROSTER_CACHE_SECONDS", "0")]).await;
    bridge.customer_texts("Is my bike ready?").await;
    bridge.run_worker().await;
    assert_eq!(copies_received(&bridge).await, [1, 1]);

    let handle = bridge.conversation(CUSTOMER).await.handle;
    bridge.agent_writes(pressed(AGENTS[0], &format!("act:claim:{}", handle.as_str()))).await;
    bridge.run_worker().await;
    bridge.customer_texts("Also the lights, please").await;
    bridge.run_worker().await;
    assert_eq!(copies_received(&bridge).await, [2, 1], "after Claim, the claimer only");

    bridge.agent_writes(whatsapp_text(AGENTS[0], "/unclaim", None)).await;
    bridge.agent_writes(whatsapp_text(AGENTS[1], "/away", None)).await;
    bridge.run_worker().await;
    bridge.customer_texts("Hello?").await;
    bridge.run_worker().await;
    assert_eq!(copies_received(&bridge).await, [3, 1], "unclaimed, and the agent away gets nothing");

    bridge.agent_writes(whatsapp_text(AGENTS[1], "/back", None)).await;
    bridge.run_worker().await;
    bridge.customer_texts("Anyone there?").await;
    bridge.run_worker().await;
    assert_eq!(copies_received(&bridge).await, [4, 2]);
}
