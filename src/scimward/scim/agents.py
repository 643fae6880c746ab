"""Non-human identities as SCIM resources: the Agent and AgenticApplication resource types of the
IETF SCIM agent drafts (draft-abbey-scim-agent-extension, draft-wzdk-scim-agent-resource) and
scimward's extension schema for the lifecycle of every non-human identity.

The drafts give an Agent a unique ``name``, ``displayName``, ``active``, ``description``,
``agentType``, ``owners`` (Users or Groups), read-only ``groups``, ``entitlements``, ``roles``, a
``parent`` agent, a ``subject`` and the ``protocols`` it speaks; an AgenticApplication hosts agents
(``agents``: owned, authorized or guest), has ``applicationUrls`` and a ``lastAccessed`` time.

What the drafts leave out and governance needs (the kind of non-human identity, its purpose,
environment, expiry, review cadence and credential metadata: never the secret) is in
``NHI_SCHEMA``, an extension of Agents and AgenticApplications. Users keep exactly the extensions of
RFC 7643 (clients with fixed User models refuse others): a User whose ``userType`` marks it a service
account is a non-human identity too, owned by its enterprise ``manager`` (``governance.nhi``).
"""

from __future__ import annotations

from scimward.scim.limits import MAX_TEXT_LENGTH
from scimward.scim.schema import Attribute, AttrType, Mutability, Schema, Uniqueness

AGENT_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Agent"
AGENTIC_APPLICATION_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:AgenticApplication"
NHI_SCHEMA = "urn:scimward:params:scim:schemas:extension:nhi:2.0:Identity"

#: The kinds of non-human identity (docs/non-human-identities.md).
NHI_KINDS = ("service_account", "api_key", "token", "certificate", "bot", "workload", "ai_agent")

S = AttrType.STRING
RO = Mutability.READ_ONLY
DT = AttrType.DATETIME


def _str(name: str, description: str, **kw: object) -> Attribute:
    return Attribute(name, S, description=description, **kw)  # type: ignore[arg-type]


def _ref(
    name: str,
    description: str,
    types: tuple[str, ...],
    canonical: tuple[str, ...] = (),
    *,
    multi: bool = True,
    mutability: Mutability = Mutability.READ_WRITE,
) -> Attribute:
    """A reference to other resources: value (their id), $ref, display and type."""
    return Attribute(
        name,
        AttrType.COMPLEX,
        multi_valued=multi,
        description=description,
        mutability=mutability,
        sub_attributes=(
            Attribute(
                "value", S, description="The id of the referenced resource.", case_exact=True, mutability=mutability
            ),
            Attribute(
                "$ref",
                AttrType.REFERENCE,
                description="The URI of the referenced resource.",
                reference_types=types,
                mutability=mutability,
            ),
            _str("display", "A human-readable name for the referenced resource.", mutability=mutability),
            *(
                (_str("type", "The kind of reference.", canonical_values=canonical, mutability=mutability),)
                if canonical
                else ()
            ),
        ),
    )


def _values(name: str, description: str) -> Attribute:
    return Attribute(
        name,
        AttrType.COMPLEX,
        multi_valued=True,
        description=description,
        sub_attributes=(
            _str("value", f"The value of {name}."),
            _str("display", "A human-readable name, primarily used for display purposes."),
            _str("type", "A label indicating the attribute's function."),
            Attribute("primary", AttrType.BOOLEAN, description="Indicates the 'primary' or preferred value."),
        ),
    )


def _name(of: str) -> Attribute:
    return Attribute(
        "name",
        S,
        required=True,
        uniqueness=Uniqueness.SERVER,
        max_length=MAX_TEXT_LENGTH,
        description=f"The unique name of the {of}. Case-insensitive.",
    )


_OWNERS = _ref("owners", "The Users or Groups accountable for this resource.", ("User", "Group"), ("User", "Group"))

AGENT = Schema(
    AGENT_SCHEMA,
    "Agent",
    "An AI agent or other non-human actor with its own identity",
    (
        _name("agent"),
        _str("displayName", "The name of the agent, suitable for display.", max_length=MAX_TEXT_LENGTH),
        _str("agentType", "The agent's classification (e.g. Assistant, Researcher)."),
        Attribute("active", AttrType.BOOLEAN, description="The agent's administrative status."),
        _str("description", "What the agent is for."),
        _OWNERS,
        _ref("groups", "The groups the agent belongs to.", ("Group",), ("direct", "indirect"), mutability=RO),
        _values("entitlements", "A list of entitlements of the agent."),
        _values("roles", "A list of roles of the agent."),
        _ref("parent", "The agent this one acts for.", ("Agent",), multi=False),
        _str("subject", "The identifier the agent presents in tokens (e.g. an OAuth client id or sub)."),
        Attribute(
            "protocols",
            AttrType.COMPLEX,
            multi_valued=True,
            description="The protocols the agent speaks.",
            sub_attributes=(
                _str("type", "The protocol.", canonical_values=("A2A", "OpenAPI", "MCP-Server", "MCP-Client")),
                Attribute(
                    "value", AttrType.REFERENCE, description="Where the agent speaks it.", reference_types=("external",)
                ),
                Attribute(
                    "specificationUrl",
                    AttrType.REFERENCE,
                    description="The protocol's specification.",
                    reference_types=("external",),
                ),
            ),
        ),
    ),
)

AGENTIC_APPLICATION = Schema(
    AGENTIC_APPLICATION_SCHEMA,
    "AgenticApplication",
    "An application that hosts or gives access to agents",
    (
        _name("application"),
        _str("displayName", "The name of the application, suitable for display.", max_length=MAX_TEXT_LENGTH),
        _str("description", "What the application is for."),
        Attribute("active", AttrType.BOOLEAN, description="The application's administrative status."),
        Attribute(
            "applicationUrls",
            AttrType.COMPLEX,
            multi_valued=True,
            description="Where the application is.",
            sub_attributes=(
                Attribute(
                    "value", AttrType.REFERENCE, description="A URL of the application.", reference_types=("external",)
                ),
                _str("type", "A label indicating the URL's function."),
                Attribute("primary", AttrType.BOOLEAN, description="The preferred URL."),
            ),
        ),
        Attribute("lastAccessed", DT, description="When the application was last used."),
        _ref("agents", "The agents of the application.", ("Agent",), ("owned", "authorized", "guest")),
        _OWNERS,
    ),
)

NHI = Schema(
    NHI_SCHEMA,
    "NonHumanIdentity",
    "scimward's lifecycle attributes of a non-human identity",
    (
        _str("kind", "The kind of non-human identity.", canonical_values=NHI_KINDS),
        _str("purpose", "Why it exists."),
        _str("environment", "Where it runs (e.g. prod, staging)."),
        Attribute("expires", DT, description="When it stops being valid."),
        _str("reviewCadence", "How often its owner attests it (a duration such as 90d)."),
        Attribute("lastReviewed", DT, description="When its owner last attested it."),
        Attribute(
            "maxApplications",
            AttrType.INTEGER,
            description="In how many applications its purpose allows it an account.",
        ),
        Attribute(
            "credentials",
            AttrType.COMPLEX,
            multi_valued=True,
            description="Metadata of its credentials. Never the secret.",
            sub_attributes=(
                _str("identifier", "The credential's identifier (key id, token name, serial number).", case_exact=True),
                _str("fingerprint", "A fingerprint of the credential (e.g. SHA-256).", case_exact=True),
                _str("type", "The kind of credential (e.g. api_key, certificate, password, token)."),
                Attribute("created", DT, description="When the credential was issued."),
                Attribute("expires", DT, description="When the credential expires."),
                Attribute("lastRotated", DT, description="When the credential was last rotated."),
                Attribute("lastUsed", DT, description="When the credential was last used."),
            ),
        ),
    ),
)
