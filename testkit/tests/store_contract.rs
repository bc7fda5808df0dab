//! One contract for the bridge's store (`shared::ports`: the six roles of
//! `ConversationStore`, and `Outbox`), run on the DynamoDB adapter over the moto emulator and
//! on the in-memory twin, so the two can't drift apart. Every case goes through the traits
//! only; the DynamoDB adapter is the reference.
//!
//! Cases share one DynamoDB table and run in parallel: each keeps to a line of its own and
//! fresh ids (`fixture.rs`). The outbox's cases get a table of their own, as its entries
//! belong to no line.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

#[path = "store_contract/agents.rs"]
mod agents;
#[path = "store_contract/conversations.rs"]
mod conversations;
#[path = "store_contract/deliveries.rs"]
mod deliveries;
#[path = "store_contract/fixture.rs"]
mod fixture;
#[path = "store_contract/inbound.rs"]
mod inbound;
#[path = "store_contract/outbox.rs"]
mod outbox;
#[path = "store_contract/routing.rs"]
mod routing;
#[path = "store_contract/statuses.rs"]
mod statuses;

/// How a backend hands a case its store: `shared` (the run's table), `own` (a table of its
/// own) or `handles` (a factory of handles on one store, e.g. two workers).
mod backends {
    pub mod dynamodb {
        use bridge_testkit::testing::TestAws;
        use shared::adapters::dynamodb::DynamoStore;
        use tokio::sync::OnceCell;

        static AWS: OnceCell<TestAws> = OnceCell::const_new();

        async fn aws() -> &'static TestAws {
            AWS.get_or_init(TestAws::new).await
        }

        pub async fn shared() -> DynamoStore {
            aws().await.store()
        }

        pub async fn own() -> DynamoStore {
            TestAws::new().await.store()
        }

        pub async fn handles() -> impl Fn() -> DynamoStore {
            let aws = aws().await;
            move || aws.store()
        }
    }

    pub mod memory {
        use bridge_testkit::memory::MemoryStore;

        pub async fn shared() -> MemoryStore {
            MemoryStore::new()
        }

        pub async fn own() -> MemoryStore {
            MemoryStore::new()
        }

        pub async fn handles() -> impl Fn() -> MemoryStore {
            let store = MemoryStore::new();
            move || store.clone()
        }
    }
}

/// Every case as a `#[tokio::test]` in `mod dynamodb` and in `mod memory`:
/// `<how it gets its store> <module>::<case>`, attributes (`#[ignore = "…"]`) in front.
macro_rules! store_contract {
    (@run $backend:ident shared $case:path) => {
        $case(&crate::store_contract::backends::$backend::shared().await).await
    };
    (@run $backend:ident own $case:path) => {
        $case(&crate::store_contract::backends::$backend::own().await).await
    };
    (@run $backend:ident handles $case:path) => {
        $case(crate::store_contract::backends::$backend::handles().await).await
    };
    (@backend $backend:ident $($(#[$meta:meta])* $kind:ident $role:ident::$case:ident),*) => {
        mod $backend {
            $(
                $(#[$meta])*
                #[tokio::test]
                async fn $case() {
                    store_contract!(@run $backend $kind crate::store_contract::$role::$case)
                }
            )*
        }
    };
    ($($(#[$meta:meta])* $kind:ident $role:ident::$case:ident),* $(,)?) => {
        store_contract!(@backend dynamodb $($(#[$meta])* $kind $role::$case),*);
        store_contract!(@backend memory $($(#[$meta])* $kind $role::$case),*);
    };
}

store_contract! {
    shared inbound::a_first_text_starts_the_conversation_and_later_texts_append,
    shared inbound::a_replayed_text_is_a_duplicate_carrying_the_first_delivery,
    shared inbound::the_dedupe_key_is_the_provider_with_its_message_id,
    shared inbound::a_taken_handle_or_an_existing_conversation_refuses_the_start_and_records_nothing,
    shared inbound::handles_are_unique_within_a_line_only,
    handles inbound::of_two_customers_racing_for_a_handle_one_gets_it,
    shared inbound::stop_and_start_keywords_opt_the_customer_out_and_back_in,
    shared inbound::the_last_text_is_cut_to_80_characters_and_names_attachments_when_empty,
    shared inbound::an_automated_reply_is_replayed_but_is_no_leg_of_the_message,

    shared conversations::an_agent_can_start_a_conversation_before_the_customer_writes,
    shared conversations::open_conversations_lists_the_lines_open_ones_latest_customer_text_first,
    shared conversations::a_closed_conversation_leaves_the_open_list_until_the_customer_writes_again,
    shared conversations::the_thread_holds_both_directions_oldest_first,
    shared conversations::an_opt_out_the_provider_reports_shows_on_the_conversation,
    shared conversations::a_handle_is_renewed_only_for_its_own_live_conversation,

    shared agents::a_pending_text_waits_until_a_reply_clears_it,
    shared agents::focus_claim_and_close_move_the_agents_focus_and_the_conversation,
    shared agents::an_agents_message_is_recorded_once,
    shared agents::a_message_about_a_conversation_that_is_gone_records_nothing,
    shared agents::forward_context_has_the_handle_the_agents_window_and_the_opt_out,
    shared agents::someone_who_is_not_an_agent_gets_one_reply_a_day,
    shared agents::an_agents_user_id_is_learnt_relearnt_and_forgotten,
    shared agents::claims_and_duty_are_the_copy_facts,
    shared agents::a_text_whose_copies_assumed_another_claim_is_refused_and_told_the_claim,
    shared agents::a_stranger_known_by_user_id_gets_one_reply_a_day_apart_from_one_known_by_phone,

    shared routing::nothing_is_found_for_what_was_never_recorded,
    shared routing::a_forwarded_copy_routes_the_agents_swipe_reply,
    shared routing::a_sent_sms_is_found_by_its_sid_and_its_leg_names_the_agents_message,
    shared routing::a_status_that_overtook_the_sms_send_is_kept,
    shared routing::a_digest_is_routed_as_a_whole_and_marks_each_leg_sent,
    shared routing::copies_park_per_agent_oldest_first_and_unpark,

    handles deliveries::a_second_claimer_waits_for_the_lease_then_takes_the_job_over_uncertain,
    handles deliveries::of_two_workers_claiming_at_once_one_gets_the_job,
    handles deliveries::send_slots_space_one_sender_for_every_caller_and_an_unused_one_can_be_given_back,
    handles deliveries::a_slot_offered_within_a_wait_is_taken_only_when_free_by_then,
    handles deliveries::an_idle_senders_burst_goes_at_once_from_every_caller_then_is_spaced,
    shared deliveries::a_worker_resumes_its_own_lease_and_a_repeated_claim_is_the_same_claim,
    shared deliveries::a_released_job_is_claimed_again_counting_its_attempts,
    shared deliveries::a_job_handed_back_untried_spends_no_attempt,
    shared deliveries::an_uncertain_job_tells_the_next_claimer_since_when_and_what_the_provider_said,
    shared deliveries::sent_and_failed_jobs_are_done,
    shared deliveries::outcomes_for_a_message_that_is_gone_change_nothing,
    shared deliveries::a_job_recorded_as_the_wrong_kind_is_refused,
    shared deliveries::notices_and_automated_replies_are_claimed_from_their_own_records,
    shared deliveries::a_jobs_leg_is_read_where_it_is_kept,

    shared statuses::delivery_statuses_only_move_forward,
    shared statuses::notices_wait_to_be_sent_only_when_their_status_change_advanced,
    shared statuses::a_status_report_keeps_the_first_provider_id_the_leg_learns,
    shared statuses::note_sent_as_gives_an_unfinished_leg_its_provider_id,
    shared statuses::a_copy_route_learnt_from_a_status_report_routes_replies,
    shared statuses::a_leg_is_added_to_its_message_once,
    shared statuses::unsent_jobs_are_the_recorded_notices_still_waiting,

    own outbox::due_entries_are_those_recorded_before_the_cutoff_oldest_first_up_to_the_limit,
    own outbox::cleared_entries_are_not_offered_again,
    own outbox::every_write_that_records_jobs_puts_them_in_the_outbox,
}
