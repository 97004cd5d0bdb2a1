// The one hand-written schema shared by both backends: portable types only (BigInt ids,
// Text, Bool, Double, naive-UTC Timestamp, Binary). `tests/it/schema.rs` checks both
// backends' migrated catalogs against this file.

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        handle -> Text,
        display_name -> Text,
        password_hash -> Text,
        bio -> Text,
        avatar_media_id -> Nullable<BigInt>,
        locale -> Nullable<Text>,
        email_verified_at -> Nullable<Timestamp>,
        password_changed_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        totp_secret -> Nullable<Text>,
        totp_last_step -> Nullable<BigInt>,
        followers_count -> BigInt,
        following_count -> BigInt,
    }
}

diesel::table! {
    user_roles (user_id, role) {
        user_id -> BigInt,
        role -> Text,
        granted_at -> Timestamp,
        granted_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Text,
        user_agent -> Text,
        mfa -> Text,
    }
}

diesel::table! {
    email_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        purpose -> Text,
        token_hash -> Text,
        new_email -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> BigInt,
        last_failure_at -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    media (id) {
        id -> BigInt,
        owner_user_id -> Nullable<BigInt>,
        content_type -> Text,
        bytes -> Binary,
        byte_size -> BigInt,
        sha256 -> Text,
        created_at -> Timestamp,
        private -> Bool,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> BigInt,
        to_addr -> Text,
        subject -> Text,
        body_text -> Text,
        kind -> Text,
        status -> Text,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    job_runs (id) {
        id -> BigInt,
        job -> Text,
        period -> Text,
        status -> Text,
        node -> Text,
        started_at -> Timestamp,
        heartbeat_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        attempts -> BigInt,
        detail -> Text,
    }
}

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        actor_user_id -> Nullable<BigInt>,
        action -> Text,
        subject_type -> Text,
        subject_id -> Nullable<BigInt>,
        shop_id -> Nullable<BigInt>,
        detail -> Text,
        ip -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    categories (id) {
        id -> BigInt,
        parent_id -> Nullable<BigInt>,
        slug -> Text,
        name_zh -> Text,
        name_en -> Text,
        deposit_fen -> BigInt,
        required_qualifications -> Text,
        sort_order -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    shops (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        description -> Text,
        logo_media_id -> Nullable<BigInt>,
        main_category_id -> BigInt,
        entity_type -> Text,
        official_user_id -> BigInt,
        status -> Text,
        restricted_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    shop_qualifications (id) {
        id -> BigInt,
        shop_id -> BigInt,
        kind -> Text,
        number -> Text,
        document_media_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    shop_staff (shop_id, user_id) {
        shop_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        added_by -> Nullable<BigInt>,
        added_at -> Timestamp,
    }
}

diesel::table! {
    shop_authorizations (id) {
        id -> BigInt,
        shop_id -> BigInt,
        user_id -> BigInt,
        authorized_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    follows (follower_id, followee_id) {
        follower_id -> BigInt,
        followee_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    products (id) {
        id -> BigInt,
        shop_id -> BigInt,
        category_id -> BigInt,
        title -> Text,
        subtitle -> Text,
        description -> Text,
        attributes -> Text,
        variant_spec -> Text,
        status -> Text,
        status_reason -> Text,
        delisted_by_platform -> Bool,
        price_min -> Nullable<BigInt>,
        price_max -> Nullable<BigInt>,
        sales_count -> BigInt,
        cover_media_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        listed_at -> Nullable<Timestamp>,
        gallery -> Text,
    }
}

diesel::table! {
    skus (id) {
        id -> BigInt,
        product_id -> BigInt,
        shop_id -> BigInt,
        code -> Text,
        attrs -> Text,
        price_fen -> BigInt,
        list_price_fen -> Nullable<BigInt>,
        stock -> BigInt,
        position -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    product_images (id) {
        id -> BigInt,
        product_id -> BigInt,
        media_id -> BigInt,
        thumb_media_id -> Nullable<BigInt>,
        position -> BigInt,
    }
}

diesel::table! {
    rule_sets (id) {
        id -> BigInt,
        note -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        snapshot -> Text,
        diff -> Text,
    }
}

diesel::table! {
    prohibited_terms (id) {
        id -> BigInt,
        term -> Text,
        match_type -> Text,
        scope -> Text,
        scope_category_id -> Nullable<BigInt>,
        severity -> Text,
        legal_basis -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    rule_params (key) {
        key -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    listing_checks (id) {
        id -> BigInt,
        product_id -> BigInt,
        rule_set_id -> BigInt,
        outcome -> Text,
        hits -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    search_grams (gram, product_id) {
        gram -> Text,
        product_id -> BigInt,
    }
}

diesel::table! {
    addresses (id) {
        id -> BigInt,
        user_id -> BigInt,
        recipient -> Text,
        phone -> Text,
        province -> Text,
        city -> Text,
        district -> Text,
        detail -> Text,
        is_default -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    cart_items (owner, sku_id) {
        owner -> Text,
        sku_id -> BigInt,
        quantity -> BigInt,
        added_at -> Timestamp,
    }
}

diesel::table! {
    checkouts (id) {
        id -> BigInt,
        buyer_id -> BigInt,
        idem_key -> Text,
        total_fen -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        order_no -> Text,
        checkout_id -> BigInt,
        buyer_id -> BigInt,
        shop_id -> BigInt,
        status -> Text,
        items_fen -> BigInt,
        shipping_fen -> BigInt,
        total_fen -> BigInt,
        refunded_fen -> BigInt,
        recipient -> Text,
        phone -> Text,
        region -> Text,
        address_detail -> Text,
        buyer_note -> Text,
        carrier -> Nullable<Text>,
        tracking_no -> Nullable<Text>,
        cancel_reason -> Text,
        created_at -> Timestamp,
        pay_deadline -> Timestamp,
        paid_at -> Nullable<Timestamp>,
        shipped_at -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    order_lines (id) {
        id -> BigInt,
        order_id -> BigInt,
        sku_id -> BigInt,
        product_id -> BigInt,
        title -> Text,
        sku_label -> Text,
        cover_media_id -> Nullable<BigInt>,
        price_fen -> BigInt,
        quantity -> BigInt,
        restocked -> Bool,
    }
}

diesel::table! {
    order_events (id) {
        id -> BigInt,
        order_id -> BigInt,
        kind -> Text,
        actor_user_id -> Nullable<BigInt>,
        note -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        intent -> Text,
        provider -> Text,
        order_id -> BigInt,
        buyer_id -> BigInt,
        amount_fen -> BigInt,
        status -> Text,
        created_at -> Timestamp,
        settled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    payment_events (id) {
        id -> BigInt,
        provider -> Text,
        event_id -> Text,
        intent -> Text,
        outcome -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    refunds (id) {
        id -> BigInt,
        order_id -> BigInt,
        shop_id -> BigInt,
        buyer_id -> BigInt,
        kind -> Text,
        reason -> Text,
        reason_category -> Text,
        note -> Text,
        photo_media_ids -> Text,
        amount_fen -> BigInt,
        status -> Text,
        respond_by -> Timestamp,
        return_address -> Text,
        return_tracking_no -> Nullable<Text>,
        reject_reason -> Text,
        restocked -> Bool,
        auto_approved -> Bool,
        decided_by -> Nullable<BigInt>,
        requested_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    complaints (id) {
        id -> BigInt,
        shop_id -> BigInt,
        buyer_id -> BigInt,
        order_id -> Nullable<BigInt>,
        reason -> Text,
        body -> Text,
        evidence_media_ids -> Text,
        merchant_reply -> Text,
        status -> Text,
        merchant_at_fault -> Nullable<Bool>,
        ruling_note -> Text,
        ruled_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        replied_at -> Nullable<Timestamp>,
        ruled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    ratings (id) {
        id -> BigInt,
        order_id -> BigInt,
        shop_id -> BigInt,
        buyer_id -> BigInt,
        described -> BigInt,
        service -> BigInt,
        logistics -> BigInt,
        body -> Text,
        photo_media_ids -> Text,
        month -> Text,
        seq -> BigInt,
        reply -> Text,
        replied_by -> Nullable<BigInt>,
        replied_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    rating_products (product_id, rating_id) {
        product_id -> BigInt,
        rating_id -> BigInt,
        described -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    score_rules (id) {
        id -> BigInt,
        params -> Text,
        note -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    dsr_snapshots (id) {
        id -> BigInt,
        shop_id -> BigInt,
        day -> Text,
        rule_version -> BigInt,
        category_id -> BigInt,
        rating_count -> BigInt,
        described -> Nullable<Double>,
        service -> Nullable<Double>,
        logistics -> Nullable<Double>,
        described_vs -> Nullable<Double>,
        service_vs -> Nullable<Double>,
        logistics_vs -> Nullable<Double>,
        valid_orders -> BigInt,
        raw_score -> Nullable<Double>,
        score -> Nullable<Double>,
        product_points -> Nullable<Double>,
        logistics_points -> Nullable<Double>,
        service_points -> Nullable<Double>,
        metrics -> Text,
        tier -> Text,
        low_days -> BigInt,
        created_at -> Timestamp,
        sums -> Nullable<Text>,
    }
}

diesel::table! {
    dsr_recommendations (day, category_id, rank) {
        day -> Text,
        category_id -> BigInt,
        rank -> BigInt,
        shop_id -> BigInt,
        score -> Double,
    }
}

diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(email_tokens -> users (user_id));
diesel::joinable!(shops -> users (official_user_id));
diesel::table! {
    violation_types (id) {
        id -> BigInt,
        code -> Text,
        version -> BigInt,
        name_zh -> Text,
        name_en -> Text,
        track -> Text,
        points -> BigInt,
        delists_product -> Bool,
        evidence_required -> Bool,
        active -> Bool,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    penalty_nodes (id) {
        id -> BigInt,
        track -> Text,
        threshold -> BigInt,
        repeat_every -> BigInt,
        action -> Text,
        days -> BigInt,
        delist_all -> Bool,
    }
}

diesel::table! {
    violations (id) {
        id -> BigInt,
        shop_id -> BigInt,
        type_id -> BigInt,
        track -> Text,
        points -> BigInt,
        year -> BigInt,
        points_before -> BigInt,
        product_id -> Nullable<BigInt>,
        order_id -> Nullable<BigInt>,
        description -> Text,
        evidence_media_ids -> Text,
        source -> Text,
        recorded_by -> Nullable<BigInt>,
        status -> Text,
        appeal_deadline -> Timestamp,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    penalties (id) {
        id -> BigInt,
        shop_id -> BigInt,
        violation_id -> Nullable<BigInt>,
        kind -> Text,
        node_threshold -> Nullable<BigInt>,
        delist_all -> Bool,
        reason -> Text,
        starts_at -> Timestamp,
        ends_at -> Nullable<Timestamp>,
        status -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    violation_delistings (violation_id, product_id) {
        violation_id -> BigInt,
        product_id -> BigInt,
    }
}

diesel::table! {
    appeals (id) {
        id -> BigInt,
        violation_id -> BigInt,
        shop_id -> BigInt,
        body -> Text,
        evidence_media_ids -> Text,
        submitted_by -> BigInt,
        status -> Text,
        decided_by -> Nullable<BigInt>,
        decision_reason -> Text,
        deadline -> Timestamp,
        created_at -> Timestamp,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(shops -> categories (main_category_id));
diesel::joinable!(shop_qualifications -> shops (shop_id));
diesel::joinable!(shop_staff -> shops (shop_id));
diesel::joinable!(shop_staff -> users (user_id));
diesel::joinable!(shop_authorizations -> shops (shop_id));
diesel::joinable!(shop_authorizations -> users (user_id));
diesel::joinable!(products -> shops (shop_id));
diesel::joinable!(products -> categories (category_id));
diesel::joinable!(skus -> products (product_id));
diesel::joinable!(product_images -> products (product_id));
diesel::joinable!(listing_checks -> products (product_id));
diesel::joinable!(search_grams -> products (product_id));
diesel::joinable!(cart_items -> skus (sku_id));
diesel::joinable!(orders -> shops (shop_id));
diesel::joinable!(orders -> users (buyer_id));
diesel::joinable!(orders -> checkouts (checkout_id));
diesel::joinable!(order_lines -> orders (order_id));
diesel::joinable!(order_lines -> skus (sku_id));
diesel::joinable!(order_events -> orders (order_id));
diesel::joinable!(payments -> orders (order_id));
diesel::joinable!(refunds -> orders (order_id));
diesel::joinable!(complaints -> shops (shop_id));

diesel::joinable!(ratings -> orders (order_id));
diesel::joinable!(ratings -> shops (shop_id));
diesel::joinable!(ratings -> users (buyer_id));
diesel::joinable!(rating_products -> ratings (rating_id));
diesel::joinable!(rating_products -> products (product_id));
diesel::joinable!(dsr_snapshots -> shops (shop_id));
diesel::joinable!(dsr_recommendations -> shops (shop_id));
diesel::joinable!(violations -> shops (shop_id));
diesel::joinable!(violations -> violation_types (type_id));
diesel::joinable!(penalties -> shops (shop_id));
diesel::joinable!(violation_delistings -> violations (violation_id));
diesel::joinable!(violation_delistings -> products (product_id));
diesel::joinable!(appeals -> violations (violation_id));
diesel::joinable!(appeals -> shops (shop_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    user_roles,
    sessions,
    email_tokens,
    login_throttle,
    media,
    mail_outbox,
    job_runs,
    app_secrets,
    audit_log,
    categories,
    shops,
    shop_qualifications,
    shop_staff,
    shop_authorizations,
    follows,
    products,
    skus,
    product_images,
    rule_sets,
    prohibited_terms,
    rule_params,
    listing_checks,
    search_grams,
    addresses,
    cart_items,
    checkouts,
    orders,
    order_lines,
    order_events,
    payments,
    payment_events,
    refunds,
    complaints,
    ratings,
    rating_products,
    score_rules,
    dsr_snapshots,
    dsr_recommendations,
    violation_types,
    penalty_nodes,
    violations,
    penalties,
    violation_delistings,
    appeals,
);
