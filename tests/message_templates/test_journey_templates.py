"""The dormancy, cart-abandonment and coupon-expiry templates, and the event catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from message_templates.render import DEFAULT_SMS_OPT_OUT_TEXT, RenderedMessage, TemplateRenderer
from message_templates.sms import sms_segments

TEMPLATES = {
    "dormancy_offer_push": "push",
    "dormancy_offer_sms": "sms",
    "cart_reminder_push": "push",
    "cart_coupon_sms": "sms",
    "cart_low_stock_sms": "sms",
    "coupon_expiry_48h_push": "push",
    "coupon_expiry_6h_sms": "sms",
}
# Templates sent on a path where the journey has issued no coupon.
COUPON_OPTIONAL = {"cart_reminder_push", "cart_low_stock_sms"}
LOCALES = ("zh-CN", "en")
OPT_OUT = {"zh-CN": DEFAULT_SMS_OPT_OUT_TEXT["zh"], "en": DEFAULT_SMS_OPT_OUT_TEXT["en"]}
EVENTS_FILE = Path(__file__).resolve().parents[2] / "journeys" / "events.yaml"
EVENT_TYPES = {"string", "number", "bool", "timestamp", "list", "object"}
EXAMPLE_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "bool": bool,
    "timestamp": (str, datetime),
    "list": list,
    "object": dict,
}

NOW = datetime(2025, 3, 2, 2, 15, tzinfo=UTC)  # 10:15 in Shanghai
CART_ITEMS = [
    {"product_id": "p_501", "name": "兰蔻小黑瓶精华 50ml", "price_fen": 76000, "quantity": 1},
    {"product_id": "p_502", "name": "帮宝适纸尿裤 L码", "price_fen": 12900, "quantity": 2},
    {"product_id": "p_503", "name": "无线蓝牙耳机", "price_fen": 19900, "quantity": 1},
    {"product_id": "p_504", "name": "316不锈钢保温杯", "price_fen": 8900, "quantity": 1},
    {"product_id": "p_505", "name": "纯棉袜子5双装", "price_fen": 1990, "quantity": 3},
]


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def user(name: str = "王小明", locale: str = "zh-CN", **extra: Any) -> dict[str, Any]:
    return {
        "id": "u_2001",
        "name": name,
        "member_tier": None,
        "locale": locale,
        "timezone": "Asia/Shanghai",
        **extra,
    }


def coupon(
    code: str = "BACK20-9XQ2",
    amount_fen: int = 2000,
    min_spend_fen: int = 9900,
    expires_at: datetime | str = NOW + timedelta(days=14),
) -> dict[str, Any]:
    return {
        "code": code,
        "amount_fen": amount_fen,
        "min_spend_fen": min_spend_fen,
        "expires_at": expires_at,
    }


def cart_trigger(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    properties = {
        "cart_id": "cart_7731",
        "items": items,
        "total_fen": sum(item["price_fen"] * item.get("quantity", 1) for item in items),
        **extra,
    }
    return {"event": "cart_updated", "properties": properties, "timestamp": NOW}


def dormancy_context(**user_fields: Any) -> dict[str, Any]:
    return {
        "user": user(**user_fields),
        "coupon": coupon(),
        "trigger": {"event": "dormancy_wakeup", "properties": {}, "timestamp": NOW},
        "unsubscribe_url": "https://example.com/unsubscribe?token=t1",
    }


def cart_context(
    items: list[dict[str, Any]] = CART_ITEMS[:1],
    *,
    with_coupon: bool = True,
    low_stock: bool | None = None,
    **user_fields: Any,
) -> dict[str, Any]:
    extra = {} if low_stock is None else {"low_stock": low_stock}
    return {
        "user": user(**user_fields),
        "coupon": coupon("CART15-3MZ8", 1500, 9900, NOW + timedelta(days=2))
        if with_coupon
        else None,
        "trigger": cart_trigger(items, **extra),
        "unsubscribe_url": "https://example.com/unsubscribe?token=t2",
    }


def expiry_context(*, iso_expiry: bool = False, **user_fields: Any) -> dict[str, Any]:
    # The engine fills ``coupon`` from the coupon_issued properties, expires_at as issued.
    expires_at = datetime(2025, 3, 9, 2, 15, tzinfo=UTC)
    properties: dict[str, Any] = {
        "coupon_code": "VIP50-K2P7",
        "amount_fen": 5000,
        "min_spend_fen": 29900,
        "expires_at": expires_at.isoformat(),
    }
    return {
        "user": user(**user_fields),
        "coupon": coupon(
            properties["coupon_code"],
            properties["amount_fen"],
            properties["min_spend_fen"],
            properties["expires_at"] if iso_expiry else expires_at,
        ),
        "trigger": {"event": "coupon_issued", "properties": properties, "timestamp": NOW},
        "unsubscribe_url": "https://example.com/unsubscribe?token=t3",
    }


def sample_for(template: str, /, **user_fields: Any) -> dict[str, Any]:
    if template.startswith("dormancy_"):
        return dormancy_context(**user_fields)
    if template.startswith("cart_"):
        low_stock = template == "cart_low_stock_sms"
        return cart_context(CART_ITEMS[:2], low_stock=low_stock, **user_fields)
    return expiry_context(**user_fields)


def render(
    renderer: TemplateRenderer, name: str, locale: str, context: dict[str, Any]
) -> RenderedMessage:
    return renderer.render(name, channel=TEMPLATES[name], locale=locale, context=context)


def assert_well_formed(message: RenderedMessage, locale: str) -> None:
    texts = [message.body, message.title or "", *message.data.values()]
    for text in texts:
        assert "{{" not in text and "{%" not in text and "None" not in text
    assert message.locale == locale
    if message.channel == "sms":
        assert message.body.endswith(OPT_OUT[locale])
        assert message.segments == sms_segments(message.body)
        assert message.segments is not None and message.segments <= 2
    if message.channel == "push":
        assert message.title and len(message.title) <= 30
        assert message.body


# --- every template, both languages ---------------------------------------------------------


def test_the_templates_exist_for_their_channels(renderer: TemplateRenderer) -> None:
    assert set(TEMPLATES) <= set(renderer.names())
    for name, channel in TEMPLATES.items():
        assert renderer.channel_of(name) == channel


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_check_finds_no_problem(renderer: TemplateRenderer, name: str) -> None:
    assert renderer.check(name, channel=TEMPLATES[name], context=sample_for(name)) == []


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_renders_in_both_languages(renderer: TemplateRenderer, name: str, locale: str) -> None:
    person = "王小明" if locale == "zh-CN" else "Lily"
    message = render(renderer, name, locale, sample_for(name, name=person, locale=locale))

    assert (message.template, message.channel) == (name, TEMPLATES[name])
    assert_well_formed(message, locale)
    assert "¥" in message.body
    if message.channel == "sms":
        assert person in message.body


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_an_empty_name_gets_a_friendly_greeting(
    renderer: TemplateRenderer, name: str, locale: str
) -> None:
    message = render(renderer, name, locale, sample_for(name, name="", locale=locale))

    assert_well_formed(message, locale)
    assert not message.body.startswith(("，", ",", " "))
    if message.channel == "sms" or locale == "zh-CN":
        assert message.body.startswith("亲，" if locale == "zh-CN" else "Hi there,")


def test_a_locale_without_text_falls_back_to_chinese(renderer: TemplateRenderer) -> None:
    message = render(renderer, "dormancy_offer_sms", "ja-JP", dormancy_context(name="Yuki"))

    assert message.locale == "zh-CN"
    assert message.body.endswith("回T退订")


# --- dormancy wake-up -----------------------------------------------------------------------


def test_dormancy_push_offers_the_comeback_coupon(renderer: TemplateRenderer) -> None:
    zh = render(renderer, "dormancy_offer_push", "zh-CN", dormancy_context())
    en = render(renderer, "dormancy_offer_push", "en", dormancy_context(name="Lily"))

    assert zh.title == "好久不见，¥20回归礼已到账"
    assert "满¥99减¥20" in zh.body and "3月16日前有效" in zh.body
    assert zh.data == en.data == {"link": "app://coupons/BACK20-9XQ2"}
    assert en.title == "We miss you: ¥20 off"
    assert "¥20 off orders of ¥99 or more, until Mar 16" in en.body


def test_dormancy_sms_repeats_the_offer_with_its_code(renderer: TemplateRenderer) -> None:
    zh = render(renderer, "dormancy_offer_sms", "zh-CN", dormancy_context())
    en = render(renderer, "dormancy_offer_sms", "en", dormancy_context(name="Lily"))

    assert zh.body.startswith("王小明，好久不见！")
    assert "券码BACK20-9XQ2" in zh.body and "满¥99减¥20" in zh.body
    assert zh.segments == 1
    assert "Take ¥20 off ¥99+ with comeback code BACK20-9XQ2, until Mar 16." in en.body
    assert en.segments == 1


# --- cart abandonment -----------------------------------------------------------------------


def test_cart_push_names_a_single_item(renderer: TemplateRenderer) -> None:
    context = cart_context(CART_ITEMS[:1], with_coupon=False)
    zh = render(renderer, "cart_reminder_push", "zh-CN", context)
    en = render(renderer, "cart_reminder_push", "en", context)

    assert zh.title == "你的购物车还有宝贝在等你"
    assert zh.body.startswith("王小明，「兰蔻小黑瓶精华 50ml」还在购物车里，合计¥760。")
    assert "等" not in zh.body
    assert en.title == "Still in your cart"
    assert en.body.startswith("兰蔻小黑瓶精华 50ml is still in your cart (¥760 in total).")
    assert zh.data == en.data == {"link": "app://cart/cart_7731"}


def test_cart_push_names_two_items(renderer: TemplateRenderer) -> None:
    context = cart_context(CART_ITEMS[:2], with_coupon=False)
    zh = render(renderer, "cart_reminder_push", "zh-CN", context)
    en = render(renderer, "cart_reminder_push", "en", context)

    assert "「兰蔻小黑瓶精华 50ml」和「帮宝适纸尿裤 L码」还在购物车里，合计¥1,018。" in zh.body
    assert "兰蔻小黑瓶精华 50ml and 帮宝适纸尿裤 L码 are still in your cart" in en.body


def test_cart_push_names_two_of_five_items_and_counts_them_all(
    renderer: TemplateRenderer,
) -> None:
    context = cart_context(CART_ITEMS, with_coupon=False)
    zh = render(renderer, "cart_reminder_push", "zh-CN", context)
    en = render(renderer, "cart_reminder_push", "en", context)

    assert "「兰蔻小黑瓶精华 50ml」「帮宝适纸尿裤 L码」等5件商品还在购物车里" in zh.body
    assert "无线蓝牙耳机" not in zh.body
    assert "兰蔻小黑瓶精华 50ml, 帮宝适纸尿裤 L码 and 3 more are still in your cart" in en.body
    assert "合计¥1,365.70" in zh.body and "(¥1,365.70 in total)" in en.body
    assert_well_formed(zh, "zh-CN")


def test_cart_push_shortens_long_product_names(renderer: TemplateRenderer) -> None:
    long_name = "【官方旗舰店】兰蔻小黑瓶精华肌底液 50ml 补水保湿修护肌肤 送女友礼物"
    item = {"product_id": "p_9", "name": long_name, "price_fen": 76000, "quantity": 1}
    message = render(
        renderer, "cart_reminder_push", "zh-CN", cart_context([item], with_coupon=False)
    )

    assert long_name not in message.body
    assert "「【官方旗舰店】兰蔻小黑瓶精华肌底液 5…」还在购物车里" in message.body


def test_cart_push_without_items_or_total_still_reads(renderer: TemplateRenderer) -> None:
    # cart_id is the only property the catalogue requires.
    context = cart_context(with_coupon=False)
    context["trigger"]["properties"] = {"cart_id": "cart_7731"}
    zh = render(renderer, "cart_reminder_push", "zh-CN", context)
    en = render(renderer, "cart_reminder_push", "en", context)

    assert zh.body == "王小明，你挑好的宝贝还在购物车里。喜欢就带回家吧～"
    assert en.body == "The items you picked are still in your cart. Tap to check out."


def test_cart_coupon_sms_gives_the_coupon(renderer: TemplateRenderer) -> None:
    one = render(renderer, "cart_coupon_sms", "zh-CN", cart_context(CART_ITEMS[:1]))
    five = render(renderer, "cart_coupon_sms", "zh-CN", cart_context(CART_ITEMS, name=""))
    en = render(renderer, "cart_coupon_sms", "en", cart_context(name="Lily"))

    assert one.body.startswith("王小明，购物车里的「兰蔻小黑瓶精华 50ml」还在等你！")
    assert "满¥99减¥15券，券码CART15-3MZ8，3月4日10:15前有效" in one.body
    assert five.body.startswith("亲，购物车里的「兰蔻小黑瓶精华 50ml」等5件宝贝还在等你！")
    assert "Take ¥15 off ¥99+ with code CART15-3MZ8, until 2025-03-04 10:15." in en.body
    for message, locale in ((one, "zh-CN"), (five, "zh-CN"), (en, "en")):
        assert_well_formed(message, locale)


@pytest.mark.parametrize("items", [CART_ITEMS[:1], CART_ITEMS], ids=["1 item", "5 items"])
@pytest.mark.parametrize("locale", LOCALES)
def test_cart_low_stock_sms_needs_no_coupon(
    renderer: TemplateRenderer, items: list[dict[str, Any]], locale: str
) -> None:
    context = cart_context(items, with_coupon=False, low_stock=True, name="Lily")
    message = render(renderer, "cart_low_stock_sms", locale, context)

    assert_well_formed(message, locale)
    assert "¥" not in message.body and "CART15" not in message.body
    if locale == "zh-CN":
        assert "库存告急" in message.body
        assert ("「兰蔻小黑瓶精华 50ml」" in message.body) == (len(items) == 1)
    else:
        assert "running low" in message.body
        assert ("it sells out" in message.body) == (len(items) == 1)


def test_cart_low_stock_sms_mentions_a_coupon_when_there_is_one(
    renderer: TemplateRenderer,
) -> None:
    context = cart_context(CART_ITEMS, low_stock=True)
    zh = render(renderer, "cart_low_stock_sms", "zh-CN", context)
    en = render(renderer, "cart_low_stock_sms", "en", cart_context(CART_ITEMS, name="Lily"))

    assert zh.body == (
        "王小明，你购物车里的部分商品库存告急，随时可能售罄。"
        "下单可用券码CART15-3MZ8，满¥99减¥15。喜欢就尽快下单吧～ 回T退订"
    )
    assert "Code CART15-3MZ8: ¥15 off ¥99+." in en.body


# --- coupon expiry --------------------------------------------------------------------------


@pytest.mark.parametrize("iso_expiry", [False, True], ids=["datetime", "iso text"])
def test_expiry_push_shows_the_local_expiry(renderer: TemplateRenderer, iso_expiry: bool) -> None:
    zh = render(renderer, "coupon_expiry_48h_push", "zh-CN", expiry_context(iso_expiry=iso_expiry))
    en = render(
        renderer, "coupon_expiry_48h_push", "en", expiry_context(iso_expiry=iso_expiry, name="L")
    )

    assert zh.title == "你的¥50优惠券快到期了"
    assert "满¥299减¥50的优惠券将在3月9日 10:15到期" in zh.body
    assert en.title == "¥50 coupon expiring soon"
    assert "expires at 10:15 on Mar 9" in en.body
    assert zh.data == en.data == {"link": "app://coupons/VIP50-K2P7"}


@pytest.mark.parametrize("iso_expiry", [False, True], ids=["datetime", "iso text"])
def test_expiry_sms_says_these_are_the_last_hours(
    renderer: TemplateRenderer, iso_expiry: bool
) -> None:
    zh = render(renderer, "coupon_expiry_6h_sms", "zh-CN", expiry_context(iso_expiry=iso_expiry))
    london = expiry_context(iso_expiry=iso_expiry, name="Lily", timezone="Europe/London")
    en = render(renderer, "coupon_expiry_6h_sms", "en", london)

    assert "只剩最后几小时，3月9日10:15到期，券码VIP50-K2P7" in zh.body
    assert zh.segments == 1
    assert en.body.startswith("Hi Lily, last hours!")
    assert "(on ¥299+) expires 2025-03-09 02:15. Code VIP50-K2P7." in en.body
    assert en.segments == 1


# --- limits under unfavourable data ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_limits_hold_with_long_names_and_big_amounts(renderer: TemplateRenderer, name: str) -> None:
    long_item = {
        "product_id": "p_9",
        "name": "【官方旗舰店】兰蔻小黑瓶精华肌底液 50ml 补水保湿修护肌肤",
        "price_fen": 129990,
        "quantity": 1,
    }
    context = sample_for(name, name="欧阳娜娜的小号")
    if name.startswith("cart_"):
        context["trigger"] = cart_trigger([long_item, *CART_ITEMS], low_stock=True)
    # The low-stock path issues no coupon; every other template here is sent with one.
    big = coupon("SPRING-2025-XK7Q", 19990, 129900, NOW + timedelta(days=2))
    context["coupon"] = None if name in COUPON_OPTIONAL else big

    message = render(renderer, name, "zh-CN", context)

    assert_well_formed(message, "zh-CN")  # two SMS segments at most, titles of 30 at most
    # An English reader with a Chinese name (or cart) gets UCS-2 SMS too: still two at most.
    assert_well_formed(render(renderer, name, "en", context), "en")
    english = render(renderer, name, "en", {**context, "user": user("Alexandra", "en")})
    assert_well_formed(english, "en")


# --- the event catalogue --------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Any]:
    data = yaml.safe_load(EVENTS_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and set(data) == {"events"}
    return data["events"]


def test_the_catalogue_lists_the_platform_events(catalogue: dict[str, Any]) -> None:
    assert set(catalogue) == {
        "user_signed_up",
        "session_started",
        "product_viewed",
        "cart_updated",
        "order_placed",
        "coupon_issued",
        "coupon_redeemed",
        "account_deleted",
    }
    for name, event in catalogue.items():
        assert set(event) <= {"description", "properties"}, name
        assert isinstance(event["description"], str) and event["description"].strip(), name
        assert isinstance(event["properties"], dict), name


def test_every_property_has_a_known_type(catalogue: dict[str, Any]) -> None:
    for name, event in catalogue.items():
        for prop, spec in event["properties"].items():
            where = f"{name}.{prop}"
            assert isinstance(spec, dict), where
            assert set(spec) <= {"type", "description", "required", "example"}, where
            assert spec["type"] in EVENT_TYPES, where
            assert isinstance(spec.get("description"), str) and spec["description"], where
            assert isinstance(spec.get("required", False), bool), where
            if "example" in spec:
                assert isinstance(spec["example"], EXAMPLE_TYPES[spec["type"]]), where


def test_properties_journeys_depend_on_are_required(catalogue: dict[str, Any]) -> None:
    required = {
        (name, prop)
        for name, event in catalogue.items()
        for prop, spec in event["properties"].items()
        if spec.get("required")
    }
    assert required == {
        ("cart_updated", "cart_id"),
        ("coupon_issued", "amount_fen"),
        ("coupon_issued", "coupon_code"),
        ("coupon_issued", "expires_at"),
        ("order_placed", "order_id"),
    }


def test_the_catalogue_describes_what_the_templates_read(catalogue: dict[str, Any]) -> None:
    def types(event: str) -> dict[str, str]:
        return {prop: spec["type"] for prop, spec in catalogue[event]["properties"].items()}

    assert types("cart_updated") == {
        "cart_id": "string",
        "items": "list",
        "total_fen": "number",
        "low_stock": "bool",
    }
    assert types("coupon_issued") == {
        "coupon_code": "string",
        "amount_fen": "number",
        "min_spend_fen": "number",
        "expires_at": "timestamp",
    }
    assert set(types("order_placed")) == {
        "order_id",
        "cart_id",
        "total",
        "total_fen",
        "category",
        "coupon_code",
        "discount_fen",
    }
    assert types("product_viewed") == {
        "product_id": "string",
        "category": "string",
        "price_fen": "number",
    }
    assert types("coupon_redeemed") == {"coupon_code": "string", "order_id": "string"}
    assert types("account_deleted") == {}


@pytest.mark.parametrize("name", ["cart_reminder_push", "cart_coupon_sms", "cart_low_stock_sms"])
def test_cart_templates_render_the_catalogue_example(
    renderer: TemplateRenderer, catalogue: dict[str, Any], name: str
) -> None:
    properties = {
        prop: spec["example"]
        for prop, spec in catalogue["cart_updated"]["properties"].items()
        if "example" in spec
    }
    context = cart_context()
    context["trigger"] = {"event": "cart_updated", "properties": properties, "timestamp": NOW}

    for locale in LOCALES:
        message = render(renderer, name, locale, context)
        assert_well_formed(message, locale)
        if name == "cart_reminder_push" or locale == "zh-CN" and name == "cart_coupon_sms":
            assert "「兰蔻小黑瓶精华 50ml」" in message.body or "50ml and" in message.body
