import httpx2

from shared.http import USER_AGENT, make_async_client


async def test_client_sends_user_agent_and_uses_base_url():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={})

    client = make_async_client(
        "http://upstream.test/developer", 10.0, transport=httpx2.MockTransport(handler)
    )
    async with client:
        await client.get("/v2/cycle")
        assert client.timeout.read == 10.0
        assert client.timeout.connect == 5.0
    assert str(seen[0].url) == "http://upstream.test/developer/v2/cycle"
    assert seen[0].headers["user-agent"] == USER_AGENT
