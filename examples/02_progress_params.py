"""Seed guide §基本用法 2: an SSE endpoint with a path parameter (verbatim).

Run: python examples/02_progress_params.py
     curl -N -H "Accept: text/event-stream" http://localhost:8087/api/progress/test123
"""
from rat_engine import RatApp
import json
import time

app = RatApp(name="sse_demo")

@app.sse("/api/progress/<session_id>")
def progress_stream(request_data, session_id):
    """进度监控流"""
    # 发送初始状态
    yield json.dumps({
        'type': 'init',
        'session_id': session_id,
        'status': 'connected'
    })
    
    # 模拟进度更新
    for progress in range(0, 101, 10):
        yield json.dumps({
            'type': 'progress',
            'session_id': session_id,
            'progress': progress
        })
        time.sleep(0.5)
    
    # 发送完成消息
    yield json.dumps({
        'type': 'completed',
        'session_id': session_id,
        'progress': 100
    })


if __name__ == "__main__":
    import os

    app.run(host="127.0.0.1", port=int(os.environ.get("RAT_PORT", 8087)))
