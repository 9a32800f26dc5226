"""Seed guide §手动格式化: frames written by hand are sent as they are (verbatim).

Run: python examples/03_manual_format.py   then   curl -N http://localhost:8087/api/custom
"""
from rat_engine import RatApp
import json

app = RatApp(name="sse_demo")

@app.sse("/api/custom")
def custom_stream(request_data):
    # 手动格式化（推荐让框架自动处理）
    yield f"data: {json.dumps({'type': 'custom'})}\n\n"
    
    # 发送事件类型
    yield f"event: notification\ndata: {json.dumps({'alert': 'New message'})}\n\n"


if __name__ == "__main__":
    import os

    app.run(host="127.0.0.1", port=int(os.environ.get("RAT_PORT", 8087)))
