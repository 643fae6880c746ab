"""The User, EnterpriseUser and Group schemas of RFC 7643 section 4 and 8.7.1, declared once, and the
resource types served: those and the non-human identities of ``scim.agents``.

Common attributes (``id``, ``externalId``, ``meta``; RFC 7643 section 3.1) are declared here too:
they are not part of any schema's ``attributes`` in ``/Schemas`` but validation and rendering read
them from ``COMMON_ATTRIBUTES``.
"""

from __future__ import annotations

from scimward.scim.agents import AGENT, AGENTIC_APPLICATION, NHI
from scimward.scim.limits import LIMITS_SCHEMA, MAX_TEXT_LENGTH
from scimward.scim.schema import (
    Attribute,
    AttrType,
    Mutability,
    ResourceType,
    Returned,
    Schema,
    SchemaExtension,
    Uniqueness,
)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
#: scimward's own Group extension: who owns a group, why it exists, how risky it is, how often it is reviewed.
GOVERNANCE_GROUP_SCHEMA = "urn:scimward:params:scim:schemas:extension:governance:2.0:Group"

S = AttrType.STRING
RO = Mutability.READ_ONLY
IMM = Mutability.IMMUTABLE


def _str(name: str, description: str, **kw: object) -> Attribute:
    return Attribute(name, S, description=description, **kw)  # type: ignore[arg-type]


#: Column sizes of ``identity_emails`` (store/tables.py): value, display, type.
_EMAIL_COLUMNS = (512, 256, 64)


def _multi(
    name: str,
    description: str,
    types: tuple[str, ...],
    value_type: AttrType = S,
    value_description: str = "",
    columns: tuple[int | None, int | None, int | None] = (None, None, None),
) -> Attribute:
    """A multi-valued complex attribute with the usual value/display/type/primary sub-attributes.

    ``columns``: the max_length of value, display and type, when the store keeps them in columns.
    """
    return Attribute(
        name,
        AttrType.COMPLEX,
        multi_valued=True,
        description=description,
        sub_attributes=(
            Attribute(
                "value", value_type, description=value_description or f"The value of {name}.", max_length=columns[0]
            ),
            _str("display", "A human-readable name, primarily used for display purposes.", max_length=columns[1]),
            _str("type", "A label indicating the attribute's function.", canonical_values=types, max_length=columns[2]),
            Attribute("primary", AttrType.BOOLEAN, description="Indicates the 'primary' or preferred attribute value."),
        ),
    )


COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "id",
        S,
        description="Unique identifier for the SCIM resource, assigned by the service provider.",
        case_exact=True,
        mutability=RO,
        returned=Returned.ALWAYS,
        uniqueness=Uniqueness.SERVER,
    ),
    Attribute(
        "externalId",
        S,
        description="An identifier for the resource as defined by the provisioning client.",
        case_exact=True,
        max_length=MAX_TEXT_LENGTH,
    ),
    Attribute(
        "meta",
        AttrType.COMPLEX,
        description="Resource metadata.",
        mutability=RO,
        sub_attributes=(
            Attribute("resourceType", S, description="The name of the resource type.", case_exact=True, mutability=RO),
            Attribute("created", AttrType.DATETIME, description="When the resource was added.", mutability=RO),
            Attribute(
                "lastModified", AttrType.DATETIME, description="When the resource was last updated.", mutability=RO
            ),
            Attribute(
                "location",
                AttrType.REFERENCE,
                description="The URI of the resource.",
                case_exact=True,
                mutability=RO,
                reference_types=("uri",),
            ),
            Attribute("version", S, description="The version (ETag) of the resource.", case_exact=True, mutability=RO),
        ),
    ),
)

_NAME = Attribute(
    "name",
    AttrType.COMPLEX,
    description="The components of the user's real name.",
    sub_attributes=(
        _str("formatted", "The full name, including all middle names, titles, and suffixes."),
        _str("familyName", "The family name of the User."),
        _str("givenName", "The given name of the User."),
        _str("middleName", "The middle name(s) of the User."),
        _str("honorificPrefix", "The honorific prefix(es) of the User."),
        _str("honorificSuffix", "The honorific suffix(es) of the User."),
    ),
)

_ADDRESSES = Attribute(
    "addresses",
    AttrType.COMPLEX,
    multi_valued=True,
    description="A physical mailing address for this User.",
    sub_attributes=(
        _str("formatted", "The full mailing address, formatted for display."),
        _str("streetAddress", "The full street address component."),
        _str("locality", "The city or locality component."),
        _str("region", "The state or region component."),
        _str("postalCode", "The zip code or postal code component."),
        _str("country", "The country name component."),
        _str("type", "A label indicating the attribute's function.", canonical_values=("work", "home", "other")),
        Attribute("primary", AttrType.BOOLEAN, description="Indicates the preferred mailing address."),
    ),
)

_GROUP_REF = Attribute(
    "groups",
    AttrType.COMPLEX,
    multi_valued=True,
    mutability=RO,
    description="A list of groups to which the user belongs, either direct or indirect.",
    sub_attributes=(
        Attribute("value", S, description="The identifier of the User's group.", mutability=RO),
        Attribute(
            "$ref", AttrType.REFERENCE, description="The URI of the Group.", mutability=RO, reference_types=("Group",)
        ),
        Attribute("display", S, description="A human-readable name for the group.", mutability=RO),
        Attribute(
            "type",
            S,
            description="How the membership was derived.",
            mutability=RO,
            canonical_values=("direct", "indirect"),
        ),
    ),
)

USER = Schema(
    USER_SCHEMA,
    "User",
    "User Account",
    (
        Attribute(
            "userName",
            S,
            required=True,
            uniqueness=Uniqueness.SERVER,
            max_length=MAX_TEXT_LENGTH,
            description="Unique identifier for the User, used to authenticate. Case-insensitive.",
        ),
        _NAME,
        _str("displayName", "The name of the User, suitable for display to end-users.", max_length=MAX_TEXT_LENGTH),
        _str("nickName", "The casual way to address the user in real life."),
        Attribute(
            "profileUrl",
            AttrType.REFERENCE,
            description="A fully qualified URL to the User's online profile.",
            reference_types=("external",),
        ),
        _str("title", 'The user\'s title, such as "Vice President".'),
        _str("userType", "Identifies the relationship between the organization and the user."),
        _str("preferredLanguage", "Indicates the User's preferred written or spoken language."),
        _str("locale", "Used to indicate the User's default location."),
        _str("timezone", "The User's time zone in the 'Olson' time zone database format."),
        Attribute(
            "active", AttrType.BOOLEAN, description="A Boolean value indicating the User's administrative status."
        ),
        Attribute(
            "password",
            S,
            mutability=Mutability.WRITE_ONLY,
            returned=Returned.NEVER,
            description="The User's cleartext password. Never returned.",
        ),
        _multi("emails", "Email addresses for the user.", ("work", "home", "other"), columns=_EMAIL_COLUMNS),
        _multi("phoneNumbers", "Phone numbers for the User.", ("work", "home", "mobile", "fax", "pager", "other")),
        _multi(
            "ims",
            "Instant messaging addresses for the User.",
            ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _multi("photos", "URLs of photos of the User.", ("photo", "thumbnail"), AttrType.REFERENCE),
        _ADDRESSES,
        _GROUP_REF,
        _multi("entitlements", "A list of entitlements for the User.", ()),
        _multi("roles", "A list of roles for the User.", ()),
        _multi("x509Certificates", "A list of certificates issued to the User.", (), AttrType.BINARY),
    ),
)

ENTERPRISE_USER = Schema(
    ENTERPRISE_USER_SCHEMA,
    "EnterpriseUser",
    "Enterprise User",
    (
        _str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
        _str("costCenter", "Identifies the name of a cost center."),
        _str("organization", "Identifies the name of an organization."),
        _str("division", "Identifies the name of a division."),
        _str("department", "Identifies the name of a department."),
        Attribute(
            "manager",
            AttrType.COMPLEX,
            description="The User's manager.",
            sub_attributes=(
                _str("value", "The id of the SCIM resource representing the User's manager."),
                Attribute("$ref", AttrType.REFERENCE, description="The URI of the manager.", reference_types=("User",)),
                Attribute("displayName", S, mutability=RO, description="The displayName of the manager."),
            ),
        ),
    ),
)

#: What a Group's members may be: Users, Groups and, by draft-abbey-scim-agent-extension (an Agent's
#: read-only ``groups`` has the form of a User's), Agents. AgenticApplications have no ``groups`` there.
MEMBER_TYPES = ("User", "Group", "Agent")
#: The resource types with a read-only ``groups`` attribute (RFC 7643 4.1.2; the Agent draft).
GROUPED_TYPES = ("User", "Agent")

GROUP = Schema(
    GROUP_SCHEMA,
    "Group",
    "Group",
    (
        Attribute(
            "displayName",
            S,
            required=True,
            max_length=MAX_TEXT_LENGTH,
            description="A human-readable name for the Group.",
        ),
        Attribute(
            "members",
            AttrType.COMPLEX,
            multi_valued=True,
            description="A list of members of the Group.",
            sub_attributes=(
                Attribute(
                    "value", S, mutability=IMM, case_exact=True, description="Identifier of the member of this Group."
                ),
                Attribute(
                    "$ref",
                    AttrType.REFERENCE,
                    mutability=IMM,
                    reference_types=MEMBER_TYPES,
                    description="The URI of the member resource.",
                ),
                Attribute(
                    "type", S, mutability=IMM, canonical_values=MEMBER_TYPES, description="The type of the member."
                ),
                Attribute("display", S, mutability=RO, description="A human-readable name for the member."),
            ),
        ),
    ),
)

GOVERNANCE_GROUP = Schema(
    GOVERNANCE_GROUP_SCHEMA,
    "GroupGovernance",
    "Least-privilege governance of a Group (docs/access-reviews.md)",
    (
        Attribute(
            "owners",
            AttrType.COMPLEX,
            multi_valued=True,
            description="The business owners of the Group: who answers for its membership and reviews it.",
            sub_attributes=(
                _str("value", "The id of the owning User.", case_exact=True),
                _str("display", "The owner's userName."),
            ),
        ),
        _str("purpose", "Why the Group exists: the bounded access it grants."),
        Attribute("privileged", AttrType.BOOLEAN, description="Whether membership grants privileged access."),
        _str("riskTier", "How much harm the access can do.", canonical_values=("low", "medium", "high", "critical")),
        Attribute(
            "reviewCadence", AttrType.INTEGER, description="Days between access reviews of the Group's membership."
        ),
        Attribute(
            "membershipExpires",
            AttrType.INTEGER,
            description="Days a membership lasts after it was granted; then it expires by itself.",
        ),
    ),
)


def _limit(name: str, description: str) -> Attribute:
    return Attribute(name, AttrType.INTEGER, description=description, mutability=Mutability.READ_ONLY)


#: What one request may carry (``scim/limits.py``), beside ServiceProviderConfig's own ``bulk``.
LIMITS = Schema(
    LIMITS_SCHEMA,
    "Limits",
    "The limits this service provider holds every request to; beyond them a 400 (docs/security.md)",
    (
        _limit("patchMaxOperations", "Operations one PATCH request may carry; beyond, 400 tooMany."),
        _limit("patchMaxValueVisits", "Values the operations of one PATCH may walk in all; beyond, 400 tooMany."),
        _limit("filterMaxLength", "Characters of one filter or PATCH path."),
        _limit("filterMaxExpressions", "Attribute expressions combined in one filter with and/or."),
        _limit("filterMaxNesting", "Parentheses nested in one filter."),
        _limit("maxValues", "Values of one multi-valued attribute kept in the resource (members excepted)."),
        _limit("maxIndex", "The largest startIndex or count a list request may name."),
        _limit("maxTextLength", "Characters of userName, externalId, displayName and an Agent's name."),
    ),
)

USER_TYPE = ResourceType("User", "/Users", "User Account", USER, (SchemaExtension(ENTERPRISE_USER),), key="userName")
GROUP_TYPE = ResourceType("Group", "/Groups", "Group", GROUP, (SchemaExtension(GOVERNANCE_GROUP),))
AGENT_TYPE = ResourceType(
    "Agent", "/Agents", "An AI agent or other non-human identity", AGENT, (SchemaExtension(NHI),), key="name"
)
AGENTIC_APPLICATION_TYPE = ResourceType(
    "AgenticApplication",
    "/AgenticApplications",
    "An application that hosts agents",
    AGENTIC_APPLICATION,
    (SchemaExtension(NHI),),
    key="name",
)

RESOURCE_TYPES: dict[str, ResourceType] = {
    rt.name: rt for rt in (USER_TYPE, GROUP_TYPE, AGENT_TYPE, AGENTIC_APPLICATION_TYPE)
}
SCHEMAS: dict[str, Schema] = {
    s.id: s for s in (USER, ENTERPRISE_USER, GROUP, GOVERNANCE_GROUP, AGENT, AGENTIC_APPLICATION, NHI, LIMITS)
}
