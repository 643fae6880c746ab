"""SQL tables. Every change to them goes through a migration in ``store/migrations``.

An identity row holds its source state (``doc``, as its source last stated it); where the policy gate
held a change, its effective state sits beside it in ``effective_states`` and ``membership_holds``
(DESIGN.md: source state, effective state). Attributes that filters and uniqueness need are promoted to indexed columns;
multi-valued data that must be found by value lives in child tables, never in a JSON array:
group membership in ``memberships`` and e-mail addresses in ``identity_emails``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JsonDoc = sa.JSON().with_variant(JSONB(), "postgresql")

identities = sa.Table(
    "identities",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("user_name", sa.String(256)),
    sa.Column("user_name_lower", sa.String(256)),
    sa.Column("external_id", sa.String(256)),
    sa.Column("display_name", sa.String(256)),
    sa.Column("display_name_lower", sa.String(256)),
    #: A User's ``userType``, lower-cased: what makes it a service account (the NHI page's list; 0024).
    sa.Column("user_type_lower", sa.String(256)),
    sa.Column("active", sa.Boolean),
    sa.Column("doc", JsonDoc, nullable=False),
    sa.Column("source", sa.String(128)),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("last_modified", sa.DateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("password_hash", sa.String(256)),
    sa.Index("uq_identities_user_name", "resource_type", "user_name_lower", unique=True),
    sa.Index("ix_identities_external_id", "resource_type", "external_id"),
    sa.Index("ix_identities_display_name", "resource_type", "display_name_lower"),
    sa.Index("ix_identities_user_type", "resource_type", "user_type_lower"),
    sa.Index("ix_identities_source", "source"),  # the dashboard's automation coverage, counted by source
    #: Lists in page order (created, id). On SQLite it holds the lowered names too, so a contains search
    #: tests them in the index and reads only the rows that match (PostgreSQL has trigrams, below).
    sa.Index("ix_identities_listing", "resource_type", "created", "id").ddl_if(dialect="postgresql"),
    sa.Index(
        "ix_identities_listing_names", "resource_type", "created", "id", "user_name_lower", "display_name_lower"
    ).ddl_if(dialect="sqlite"),
    #: ``sw`` filters (LIKE 'x%'): PostgreSQL's btree above answers them only in the C collation.
    sa.Index(
        "ix_identities_user_name_prefix",
        "resource_type",
        "user_name_lower",
        postgresql_ops={"user_name_lower": "text_pattern_ops"},
    ).ddl_if(dialect="postgresql"),
    sa.Index(
        "ix_identities_display_name_prefix",
        "resource_type",
        "display_name_lower",
        postgresql_ops={"display_name_lower": "text_pattern_ops"},
    ).ddl_if(dialect="postgresql"),
    #: ``co`` and ``ew`` filters (LIKE '%x%'): trigrams (pg_trgm, migration 0024); SQLite bounds them instead.
    sa.Index(
        "ix_identities_user_name_trgm",
        "user_name_lower",
        postgresql_using="gin",
        postgresql_ops={"user_name_lower": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql"),
    sa.Index(
        "ix_identities_display_name_trgm",
        "display_name_lower",
        postgresql_using="gin",
        postgresql_ops={"display_name_lower": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql"),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("group_id", sa.String(36), sa.ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("member_id", sa.String(36), sa.ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("member_type", sa.String(32), nullable=False),
    sa.Index("ix_memberships_member_id", "member_id"),
)

identity_emails = sa.Table(
    "identity_emails",
    metadata,
    sa.Column("identity_id", sa.String(36), sa.ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("value", sa.String(512)),
    sa.Column("value_lower", sa.String(512)),
    sa.Column("type", sa.String(64)),
    sa.Column("display", sa.String(256)),
    sa.Column("primary", sa.Boolean),
    sa.Index("ix_identity_emails_value_lower", "value_lower"),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("expires", sa.DateTime),
    sa.Column("last_used", sa.DateTime),
    sa.Column("revoked", sa.DateTime),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("identities.id", ondelete="SET NULL")),
    sa.Column("patch_response", sa.String(16), nullable=False, server_default="resource"),
    #: Space-separated: "scim" (the SCIM endpoint) or "admin" (the admin API, and SCIM too).
    sa.Column("scopes", sa.String(64), nullable=False, server_default="scim"),
    #: The person accountable for the token (a hub User's id; no foreign key, so a deleted owner is
    #: still known): hub tokens are non-human identities, and stop working when their owner leaves.
    sa.Column("owner_id", sa.String(36)),
    #: When the token replaced another (``nhi rotate``), the one it replaced: revoked after an overlap.
    sa.Column("rotated_from", sa.String(128)),
    #: The source (``sources.name``) whose SCIM client holds the token: its changes carry ``scim:SOURCE``.
    sa.Column("source", sa.String(64)),
    sa.UniqueConstraint("name", name="uq_tokens_name"),
    sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
    sa.Index("ix_tokens_owner_id", "owner_id"),
)

#: Secrets the hub generates for itself, shared by all its processes (e.g. the cursor signing key).
hub_secrets = sa.Table(
    "hub_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
)

#: Exact counts per resource type, spread over shards (see migration 0004).
identity_counts = sa.Table(
    "identity_counts",
    metadata,
    sa.Column("resource_type", sa.String(32), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    #: Removals so far: positions in a list shift only when this moves (``store.identity._positions``).
    sa.Column("removed", sa.BigInteger, nullable=False, server_default="0"),
)

# -- outbound provisioning (DESIGN.md: target, outbox, link) -----------------------------------

#: A downstream SCIM application. ``config`` holds scope, group push, mapping and deprovisioning
#: (see ``sync.targets``); the bearer token is encrypted at rest.
targets = sa.Table(
    "targets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("base_url", sa.String(1024), nullable=False),
    sa.Column("token_encrypted", sa.Text, nullable=False),
    sa.Column("config", JsonDoc, nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("quarantined", sa.DateTime),
    sa.Column("quarantine_reason", sa.Text),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", sa.DateTime),
    sa.UniqueConstraint("name", name="uq_targets_name"),
)

#: Work to do: one row per (target, identity) whose desired state may differ from the actual one.
#: Newest wins: a new change bumps ``generation`` and ``due``; ``enqueued`` keeps the oldest
#: unacknowledged change, so latency is measured from it.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
    #: An identity's id, or ``orphan:<remote id>`` for an orphaned account reconcile deactivates
    #: (resource type "Orphan"; migration 0023).
    sa.Column("identity_id", sa.String(300), primary_key=True),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("enqueued", sa.DateTime, nullable=False),
    sa.Column("due", sa.DateTime, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_until", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_outbox_due", "due"),
)
#: The order workers claim rows in (``Outbox.claim``): Users first ("User" sorts after "Group"), then by due.
sa.Index("ix_outbox_claim", outbox.c.resource_type.desc(), outbox.c.due)

#: An identity and its account in one target, with the state the target last acknowledged.
links = sa.Table(
    "links",
    metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("identity_id", sa.String(36), primary_key=True),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("remote_id", sa.String(256), nullable=False),
    sa.Column("state", JsonDoc),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("acknowledged", sa.DateTime, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_links_remote_id", "target_id", "remote_id"),
    sa.Index("ix_links_target_status", "target_id", "status", "resource_type"),  # accounts counted in the index
)

#: Group memberships a target has acknowledged, so membership is pushed as add/remove deltas.
link_members = sa.Table(
    "link_members",
    metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("group_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
)

#: What each push did, for status, latency and the audit of repairs.
push_log = sa.Table(
    "push_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("identity_id", sa.String(300), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("enqueued", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Index("ix_push_log_target", "target_id", "finished"),
)

# -- reconcile (DESIGN.md: reconcile, finding) -------------------------------------------------

#: Drift that a reconcile found between what a target should hold, was last sent, and holds.
#: A finding stays one row while it persists (``first_seen`` kept, ``last_seen`` moved on each run);
#: a run that no longer sees it resolves it. At most one open row per (target, kind, subject, attribute).
#: The partial indexes' predicate, and what an upsert names to reach them (a literal: PostgreSQL must
#: prove from the statement alone that it targets the partial index).
FINDING_LIVE = "status <> 'resolved'"

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    #: The target whose drift this is; NULL for a finding about the hub itself (governance).
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE")),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=False),
    #: The hub identity's id, else the account's id on the target (an account nobody in the hub owns).
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("identity_id", sa.String(36)),
    sa.Column("remote_id", sa.String(256)),
    #: A SCIM path ("title", "members[value eq \"...\"]"), or "" for the whole account.
    sa.Column("attribute", sa.String(512), nullable=False),
    sa.Column("desired", JsonDoc),
    sa.Column("last_pushed", JsonDoc),
    sa.Column("actual", JsonDoc),
    sa.Column("detail", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("first_seen", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.Column("resolved_at", sa.DateTime),
    sa.Column("repaired_at", sa.DateTime),
    sa.Column("repair", sa.Text),
    #: Who must act on it: the identity's or group's owner, else the target's (a userName or a name).
    sa.Column("owner", sa.String(256)),
    #: A risk accepted (status risk_accepted) until then, by whom and why; open again after it.
    sa.Column("accepted_until", sa.DateTime),
    sa.Column("accepted_by", sa.String(256)),
    sa.Column("accepted_reason", sa.Text),
    #: A live finding (open, acknowledged, risk_accepted) is one row per key; NULL targets never
    #: collide in the first index, so the hub's own findings have the second.
    sa.Index(
        "uq_findings_open",
        "target_id",
        "kind",
        "subject",
        "attribute",
        unique=True,
        sqlite_where=sa.text(FINDING_LIVE),
        postgresql_where=sa.text(FINDING_LIVE),
    ),
    sa.Index(
        "uq_findings_open_hub",
        "kind",
        "subject",
        "attribute",
        unique=True,
        sqlite_where=sa.text(f"target_id IS NULL AND {FINDING_LIVE}"),
        postgresql_where=sa.text(f"target_id IS NULL AND {FINDING_LIVE}"),
    ),
    sa.Index("ix_findings_target_status", "target_id", "status", "last_seen"),
    sa.Index("ix_findings_kind_status", "kind", "status"),
)

#: One reconcile of one target: who asked, when it ran, what it read and found. A running row with
#: a recent heartbeat keeps a second reconcile of the same target from starting.
reconcile_runs = sa.Table(
    "reconcile_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("repair", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("heartbeat", sa.DateTime, nullable=False),
    sa.Column("finished", sa.DateTime),
    sa.Column("users_read", sa.Integer, nullable=False, server_default="0"),
    sa.Column("groups_read", sa.Integer, nullable=False, server_default="0"),
    sa.Column("counts", JsonDoc),
    sa.Column("error", sa.Text),
    sa.Index("ix_reconcile_runs_target", "target_id", "started"),
)


# -- the policy gate (DESIGN.md: change, gate, effective state) ---------------------------------

#: Every proposed mutation of an identity (or of a target's configuration), with its decision.
changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    #: The identity's id; for a configuration change, the target's name.
    sa.Column("identity_id", sa.String(64)),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("op", sa.String(16), nullable=False),
    #: applied, pending, approved, rejected, denied, superseded, expired
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.String(128)),
    sa.Column("actor", sa.String(128)),
    sa.Column("before", JsonDoc),
    sa.Column("after", JsonDoc),
    sa.Column("changed", JsonDoc),
    sa.Column("members_added", JsonDoc),
    sa.Column("members_removed", JsonDoc),
    #: allow, hold or deny
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("rules", JsonDoc),
    sa.Column("approvals_needed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("approvals", JsonDoc),
    sa.Column("blast_radius", JsonDoc),
    #: Ids of the targets whose open breaker holds this change.
    sa.Column("held_by_breaker", JsonDoc),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("decided", sa.DateTime),
    sa.Column("expires", sa.DateTime),
    sa.Column("note", sa.Text),
    sa.Index("ix_changes_identity", "identity_id", "status"),
    #: A status's changes newest first: its id too, so the page's order needs no sort (issue 18).
    sa.Index("ix_changes_status", "status", "created", "id"),
    #: Every change newest first (the console's Changes, all statuses), paged by keyset.
    sa.Index("ix_changes_created", "created", "id"),
    #: A change named by the head of its id (``changes approve 01a2...``, the console's links): LIKE 'x%'.
    sa.Index("ix_changes_id_prefix", "id", postgresql_ops={"id": "text_pattern_ops"}).ddl_if(dialect="postgresql"),
)

#: An identity whose effective state differs from its source state: ``doc`` is the effective document
#: (NULL: it has no effective state, a held create); ``source_deleted`` when its source deleted it.
effective_states = sa.Table(
    "effective_states",
    metadata,
    sa.Column("identity_id", sa.String(36), primary_key=True),
    sa.Column("resource_type", sa.String(32), nullable=False),
    sa.Column("doc", JsonDoc),
    sa.Column("source_deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("change_id", sa.String(36)),
)

#: A membership whose effective state differs from the source's: ``add`` (the source has it, it is
#: not effective yet) or ``remove`` (the source dropped it, it is still effective).
membership_holds = sa.Table(
    "membership_holds",
    metadata,
    sa.Column("group_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("member_type", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("change_id", sa.String(36)),
    sa.Index("ix_membership_holds_member_id", "member_id"),
)

#: Every policy applied, newest last: the newest row is in force.
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("document", JsonDoc, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("applied", sa.DateTime, nullable=False),
    sa.Column("applied_by", sa.String(128), nullable=False),
)

#: An account a change would deprovision on a target, counted by that target's breaker window.
breaker_events = sa.Table(
    "breaker_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("identity_id", sa.String(36), nullable=False),
    sa.Column("change_id", sa.String(36), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Index("ix_breaker_events_target", "target_id", "at"),
)

#: A target's open mass-change breaker: while the row exists, deprovisioning there is held.
breakers = sa.Table(
    "breakers",
    metadata,
    sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("opened", sa.DateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# -- audit trail (DESIGN.md: audit event; store/governance/audit.py) --------------------------------------

#: Append-only, hash-chained events: each carries the hash of the one before it in its lane.
#: ``data`` is the payload's canonical JSON as text: the bytes hashed are the bytes kept.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("lane", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("time", sa.DateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("subject", sa.String(512), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_events_time", "time"),
)

#: Each lane's newest event: appends advance it in their own transaction, which orders them.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("lane", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# -- access reviews (issue 15; governance/reviews) ---------------------------------------------

#: One access-review campaign: over the members of the groups a filter takes, or the accounts of a target.
review_campaigns = sa.Table(
    "review_campaigns",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    #: "groups" (``scope`` is a SCIM filter over Groups) or "target" (``scope`` is a target's name).
    sa.Column("scope_kind", sa.String(16), nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    #: "owner", "manager" or "user:USERNAME": who is asked to decide each item.
    sa.Column("reviewer", sa.String(300), nullable=False),
    #: keep or revoke: what an undecided item becomes at the due date (or when the campaign is closed).
    sa.Column("default_decision", sa.String(8), nullable=False),
    #: open or closed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("due", sa.DateTime, nullable=False),
    sa.Column("closed", sa.DateTime),
    sa.Column("closed_by", sa.String(256)),
    sa.Column("items", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("name", name="uq_review_campaigns_name"),
    sa.Index("ix_review_campaigns_status", "status", "due"),
)

#: One item of a campaign: a (member, group) or an (account, target), its context and its decision.
review_items = sa.Table(
    "review_items",
    metadata,
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("review_campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    #: membership or account
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("member_id", sa.String(36), nullable=False),
    sa.Column("member_name", sa.String(256), nullable=False),
    sa.Column("group_id", sa.String(36)),
    sa.Column("group_name", sa.String(256)),
    sa.Column("target_id", sa.Integer),
    sa.Column("target_name", sa.String(128)),
    #: The userNames asked to decide it.
    sa.Column("reviewers", JsonDoc),
    #: When and by which source (and change) the access was granted, as far as the changes table knows.
    sa.Column("granted", sa.DateTime),
    sa.Column("granted_by", sa.String(128)),
    sa.Column("granted_change", sa.String(36)),
    #: The member's state per target from the last reconcile, its activity and the peers' departments.
    sa.Column("context", JsonDoc),
    #: keep or revoke, and why
    sa.Column("recommendation", sa.String(8), nullable=False),
    sa.Column("reasons", JsonDoc),
    sa.Column("decision", sa.String(8)),
    sa.Column("decided_by", sa.String(256)),
    sa.Column("decided", sa.DateTime),
    sa.Column("note", sa.Text),
    #: Whether the decision is the campaign's default (nobody decided in time).
    sa.Column("defaulted", sa.Boolean, nullable=False, server_default=sa.false()),
    #: What the revoke did: applied, held, failed, or gone (the access had gone already).
    sa.Column("outcome", sa.String(16)),
    sa.Column("outcome_change", sa.String(36)),
    sa.Column("outcome_detail", sa.Text),
    sa.Index("ix_review_items_decision", "campaign_id", "decision"),
    sa.Index("ix_review_items_member", "member_id"),
)

#: Memberships a review revoked: the gate holds their re-grant with the review as its reason.
revoked_memberships = sa.Table(
    "revoked_memberships",
    metadata,
    sa.Column("group_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(36), primary_key=True),
    sa.Column("campaign_id", sa.String(36), nullable=False),
    sa.Column("campaign_name", sa.String(128), nullable=False),
    sa.Column("item_number", sa.Integer, nullable=False),
    sa.Column("revoked", sa.DateTime, nullable=False),
    sa.Column("revoked_by", sa.String(256), nullable=False),
)

#: Reminders sent to reviewers of open campaigns, for the record.
review_reminders = sa.Table(
    "review_reminders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(36), sa.ForeignKey("review_campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("reviewer", sa.String(256), nullable=False),
    sa.Column("items", sa.Integer, nullable=False),
    sa.Column("sent", sa.DateTime, nullable=False),
    sa.Index("ix_review_reminders_campaign", "campaign_id", "sent"),
)


#: The lifecycle state the NHI worker keeps per non-human identity (docs/non-human-identities.md):
#: since when every owner is gone (the grace period runs from there), what the cascade did, and the
#: last recorded rotation of its credential.
nhi_states = sa.Table(
    "nhi_states",
    metadata,
    sa.Column("identity_id", sa.String(36), primary_key=True),
    sa.Column("orphaned_since", sa.DateTime),
    sa.Column("last_action", sa.String(32)),
    sa.Column("last_action_at", sa.DateTime),
    sa.Column("left_owner", sa.String(36)),
    #: Who answers for it, and where they sit (owners, their department and manager), hashed: when it
    #: changes (a mover, a transfer) the NHI is due for attestation from ``attest_since``.
    sa.Column("owner_fingerprint", sa.String(64)),
    sa.Column("attest_since", sa.DateTime),
)

#: Where identities' truth comes from (DESIGN.md: source): an IdP over SCIM, or an HR export (csv, json).
sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    #: Where two sources of one kind state the same person, the lower number wins.
    sa.Column("priority", sa.Integer, nullable=False),
    #: The source's settings: the correlation keys, the mapping file's columns.
    sa.Column("config", JsonDoc),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("last_import", sa.DateTime),
    sa.UniqueConstraint("name", name="uq_sources_name"),
)

#: An HR source's records as its last import stated them, and the hub identity each correlates with.
hr_records = sa.Table(
    "hr_records",
    metadata,
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("employee_id", sa.String(128), primary_key=True),
    sa.Column("identity_id", sa.String(36)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("hire_date", sa.Date),
    sa.Column("termination_date", sa.Date),
    sa.Column("manager_id", sa.String(128)),
    sa.Column("department", sa.String(256)),
    sa.Column("email", sa.String(512)),
    #: The SCIM attributes the record states (``governance.sources.records``).
    sa.Column("attributes", JsonDoc, nullable=False),
    #: What the import last set ``active`` to (None: it never set it), so a pre-hire it deactivated is
    #: the one it activates on the hire date, and nobody else.
    sa.Column("set_active", sa.Boolean),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("imported", sa.DateTime, nullable=False),
    sa.Index("ix_hr_records_identity_id", "identity_id"),
)

# -- the console's sign-in (store/auth/console.py) ---------------------------------------------

#: Local break-glass administrators of the console: a password kept only as an Argon2id hash.
console_admins = sa.Table(
    "console_admins",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("disabled", sa.DateTime),
)

#: Server-side console sessions: the cookie carries a random token, the row its SHA-256 hash.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.Column("expires", sa.DateTime, nullable=False),
    sa.Column("revoked", sa.DateTime),
    sa.Index("ix_console_sessions_name", "name"),
)

# -- evidence (scimward.governance: coverage, propagation risk, the report) ------------------------

#: One row a day: automation coverage, propagation risk and live findings per framework id as they
#: stood when taken (``governance.snapshots``), so the report can draw their trend.
evidence_snapshots = sa.Table(
    "evidence_snapshots",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("taken", sa.DateTime, nullable=False),
    sa.Column("figures", JsonDoc, nullable=False),
)
