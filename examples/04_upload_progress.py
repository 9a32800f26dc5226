"""Seed guide §文件上传进度监控: the polling progress stream and broadcast_progress (verbatim).

Glue the guide leaves out (marked below): the upload form and POST route, the worker that
processes the saved upload in chunks and reports progress through ``broadcast_progress``, and the
``/api/download/<session_id>`` route the completion event points to.

The guide's design (a global dict polled every 0.1 s) only works inside one process; the
broadcast-channel version of this flow is the scaling path (see docs/).

Run: python examples/04_upload_progress.py   then open http://localhost:8087/
"""
from rat_engine import RatApp
import os
import tempfile
import threading
import uuid
import json
import time
from collections import defaultdict

app = RatApp(name="upload_demo")

# 全局消息队列
sse_messages = defaultdict(list)
upload_sessions = {}

@app.sse("/api/progress/<session_id>")
def progress_stream(request_data, session_id):
    """文件上传进度流"""
    try:
        # 获取会话信息
        session = upload_sessions.get(session_id, {})
        
        # 发送初始状态
        initial_message = {
            'type': 'init',
            'session_id': session_id,
            'filename': session.get('filename', ''),
            'progress': session.get('progress', 0.0),
            'completed': session.get('completed', False)
        }
        yield json.dumps(initial_message)
        
        # 如果已完成，发送完成消息
        if session.get('completed', False):
            yield json.dumps({
                'type': 'completed',
                'session_id': session_id,
                'filename': session['filename'],
                'file_size': session['file_size'],
                'download_url': f'/api/download/{session_id}',
                'progress': 100.0
            })
            return
        
        # 监听消息队列
        start_time = time.time()
        last_heartbeat = time.time()
        
        while time.time() - start_time < 300:  # 5分钟超时
            time.sleep(0.1)
            
            # 处理待发送的消息
            if session_id in sse_messages and sse_messages[session_id]:
                message = sse_messages[session_id].pop(0)
                if message.get('session_id') == session_id:
                    yield json.dumps(message)
                    if message.get('type') == 'completed':
                        return
            
            # 检查会话状态
            session = upload_sessions.get(session_id, {})
            if session.get('completed', False):
                yield json.dumps({
                    'type': 'completed',
                    'session_id': session_id,
                    'filename': session['filename'],
                    'file_size': session['file_size'],
                    'download_url': f'/api/download/{session_id}',
                    'progress': 100.0
                })
                return
            
            # 心跳检测
            current_time = time.time()
            if current_time - last_heartbeat >= 10:
                yield json.dumps({
                    'type': 'heartbeat',
                    'timestamp': current_time
                })
                last_heartbeat = current_time
                
    except Exception as e:
        yield json.dumps({
            'type': 'error',
            'message': str(e)
        })

def broadcast_progress(session_id, message):
    """广播进度消息到 SSE 流"""
    message['session_id'] = session_id
    sse_messages[session_id].append(message)
    print(f"📡 [{session_id}] {message['type']}: {message}")


# --- glue: upload form, upload route, worker, download route ---------------------------------
UPLOAD_DIR = os.environ.get("RAT_UPLOAD_DIR") or tempfile.mkdtemp(prefix="rat_uploads_")
CHUNK = 64 * 1024
PAGE = """<!doctype html><meta charset="utf-8"><title>upload</title>
<form id="f"><input type="file" name="file" id="file"> <button>Upload</button></form>
<progress id="bar" max="100" value="0"></progress> <span id="status"></span> <a id="link"></a>
<script>
document.getElementById('f').onsubmit = async (e) => {
  e.preventDefault();
  const body = new FormData(); body.append('file', document.getElementById('file').files[0]);
  const {session_id} = await (await fetch('/api/upload', {method: 'POST', body})).json();
  const es = new EventSource('/api/progress/' + session_id);
  es.onmessage = (event) => {
    const data = JSON.parse(event.data);
    document.getElementById('bar').value = data.progress || 0;
    document.getElementById('status').textContent = data.type;
    if (data.type === 'completed') {
      const a = document.getElementById('link'); a.href = data.download_url; a.textContent = 'download';
      es.close();
    }
  };
};
</script>"""


@app.html("/")
def upload_page(request_data):
    return PAGE


def _process_in_chunks(session_id, staging, target):
    """Stand-in for real work on the upload (scanning, converting...), reporting progress."""
    session = upload_sessions[session_id]
    total = os.path.getsize(staging)
    written = 0
    with open(staging, "rb") as src, open(target, "wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            written += len(chunk)
            session['progress'] = round(100.0 * written / max(total, 1), 1)
            broadcast_progress(session_id, {'type': 'progress', 'progress': session['progress']})
            time.sleep(float(os.environ.get("RAT_UPLOAD_DELAY", "0.05")))
    os.remove(staging)
    session.update(completed=True, file_size=written, path=target, progress=100.0)


@app.json("/api/upload", methods=["POST"])
def upload(request_data):
    upload = request_data.files().get('file')
    if upload is None:
        return {'error': 'no file field named "file"'}, 400
    session_id = uuid.uuid4().hex
    target = os.path.join(UPLOAD_DIR, session_id)
    upload_sessions[session_id] = {'filename': os.path.basename(upload.filename), 'progress': 0.0,
                                   'completed': False, 'content_type': upload.content_type}
    # Uploaded files are closed once the response is sent: save it before handing it off.
    staging = target + ".part"
    upload.save(staging)
    threading.Thread(target=_process_in_chunks, args=(session_id, staging, target), daemon=True).start()
    return {'session_id': session_id, 'progress_url': f'/api/progress/{session_id}'}


@app.file("/api/download/<session_id>")
def download(request_data, session_id):
    session = upload_sessions.get(session_id)
    if not session or not session.get('completed'):
        return os.path.join(UPLOAD_DIR, 'missing')  # a path that does not exist: 404
    return session['path'], session['content_type']


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("RAT_PORT", 8087)))
