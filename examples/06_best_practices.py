"""Seed guide §最佳实践, §性能优化 and §调试技巧: every stream, verbatim.

Glue (not in the guide): ``expensive_database_query``, ``get_from_cache`` and
``process_large_dataset_in_chunks`` are stand-ins for the user's own code.

Run: python examples/06_best_practices.py   then e.g.   curl -N http://localhost:8087/api/safe-stream
"""
from rat_engine import RatApp
import json
import time

app = RatApp(name="sse_demo")


# --- glue: stand-ins for the application's own data sources ---------------------------------
def expensive_database_query():
    time.sleep(0.01)
    return {'rows': 1}


def get_from_cache(i):
    return {'item': i, 'cached': True}


def process_large_dataset_in_chunks():
    for start in range(0, 50, 10):
        yield {'chunk': list(range(start, start + 10))}


# --- the guide's code -----------------------------------------------------------------------
@app.sse("/api/safe-stream")
def safe_stream(request_data):
    try:
        for i in range(100):
            yield json.dumps({'progress': i})
            time.sleep(0.1)
    except Exception as e:
        yield json.dumps({
            'type': 'error',
            'message': str(e)
        })
    finally:
        # 清理资源
        yield json.dumps({'type': 'closed'})

@app.sse("/api/timeout-stream")
def timeout_stream(request_data):
    start_time = time.time()
    timeout = 300  # 5分钟超时
    
    while time.time() - start_time < timeout:
        # 业务逻辑
        yield json.dumps({'timestamp': time.time()})
        time.sleep(1)
    
    # 超时处理
    yield json.dumps({
        'type': 'timeout',
        'message': '连接超时'
    })

@app.sse("/api/heartbeat-stream")
def heartbeat_stream(request_data):
    last_heartbeat = time.time()
    
    while True:
        current_time = time.time()
        
        # 每30秒发送心跳
        if current_time - last_heartbeat >= 30:
            yield json.dumps({
                'type': 'heartbeat',
                'timestamp': current_time
            })
            last_heartbeat = current_time
        
        time.sleep(1)

# ❌ 错误：阻塞操作
@app.sse("/api/blocking")
def blocking_stream(request_data):
    for i in range(1000):
        # 阻塞的数据库查询
        result = expensive_database_query()
        yield json.dumps(result)

# ✅ 正确：使用缓存或异步处理
@app.sse("/api/non-blocking")
def non_blocking_stream(request_data):
    for i in range(1000):
        # 从缓存或消息队列获取数据
        result = get_from_cache(i)
        yield json.dumps(result)
        time.sleep(0.01)  # 让出 CPU

@app.sse("/api/memory-efficient")
def memory_efficient_stream(request_data):
    # 使用生成器避免一次性加载大量数据
    for chunk in process_large_dataset_in_chunks():
        yield json.dumps(chunk)
        # 及时释放内存
        del chunk

@app.sse("/api/debug-stream")
def debug_stream(request_data):
    # 添加调试信息
    yield json.dumps({
        'type': 'debug',
        'request_info': {
            'method': request_data.get('method'),
            'path': request_data.get('path'),
            'headers': dict(request_data.get('headers', {}))
        }
    })
    
    # 正常业务逻辑
    for i in range(10):
        yield json.dumps({'data': i})


if __name__ == "__main__":
    import os

    app.run(host="127.0.0.1", port=int(os.environ.get("RAT_PORT", 8087)))
