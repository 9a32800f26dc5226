"""Seed guide §实时日志流: tail -f a log file as SSE (verbatim).

When the client leaves, the generator is closed at its next yield (the next log line), so its
``finally`` terminates the ``tail`` process: no tail is left behind.

Run: python examples/05_log_stream.py   then   curl -N http://localhost:8087/api/logs/syslog
"""
from rat_engine import RatApp
import json
import time
import subprocess
import threading

app = RatApp(name="sse_demo")

@app.sse("/api/logs/<service_name>")
def log_stream(request_data, service_name):
    """实时日志流"""
    try:
        # 启动日志进程
        process = subprocess.Popen(
            ['tail', '-f', f'/var/log/{service_name}.log'],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True
        )
        
        # 发送连接确认
        yield json.dumps({
            'type': 'connected',
            'service': service_name,
            'timestamp': time.time()
        })
        
        # 流式读取日志
        for line in iter(process.stdout.readline, ''):
            if line:
                yield json.dumps({
                    'type': 'log',
                    'service': service_name,
                    'message': line.strip(),
                    'timestamp': time.time()
                })
            
    except Exception as e:
        yield json.dumps({
            'type': 'error',
            'message': str(e)
        })
    finally:
        if 'process' in locals():
            process.terminate()


if __name__ == "__main__":
    import os

    app.run(host="127.0.0.1", port=int(os.environ.get("RAT_PORT", 8087)))
