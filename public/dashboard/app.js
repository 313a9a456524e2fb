// The operator's dashboard: sensors on a map, live temperature lines, incidents with an acknowledge
// button. Everything goes through the public GraphQL API: queries and mutations over HTTP, the
// incidentUpdates and readingUpdates subscriptions over graphql-ws. No framework, nothing loaded
// from outside the API.
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('dashboard-config').textContent);
  var MAX_CHARTS = 8;
  var WINDOW = 120; // readings per chart line
  // The fleet, thresholds and history (which fills the lines' past and any gap in the live points,
  // readingUpdates being at most once) are read this often; the lines move with readingUpdates.
  var REFRESH_MS = 10000;
  var LIVE_PER_SECOND = 2; // live points per sensor and second, at most (the latest reading wins)
  var LIVE_RENDER_MS = 250; // charts are redrawn at most this often for live points

  var keyInput = document.getElementById('key');
  var statusEl = document.getElementById('status');
  var credential = config.devKey || localStorage.getItem('iot.dashboard.key') || '';
  keyInput.value = credential;
  keyInput.addEventListener('change', function () {
    credential = keyInput.value.trim();
    localStorage.setItem('iot.dashboard.key', credential);
    restart();
  });

  // Nothing is sent before there is a credential, unless the API lets callers in without one.
  function canAsk() {
    return Boolean(credential) || config.openAccess === true;
  }

  function headers() {
    var h = { 'content-type': 'application/json' };
    if (credential) h.authorization = 'Bearer ' + credential;
    return h;
  }

  function gql(query, variables) {
    return fetch(config.endpoint, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({ query: query, variables: variables || {} }),
    })
      .then(function (r) {
        return r.json();
      })
      .then(function (body) {
        if (body.errors && body.errors.length) {
          var e = body.errors[0];
          throw new Error(((e.extensions && e.extensions.code) || 'ERROR') + ': ' + e.message);
        }
        return body.data;
      });
  }

  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.className = 'status' + (isError ? ' error' : '');
  }

  // ---- state
  var sensors = new Map(); // id -> { id, scenario, lat, lon, points: [[t], [v]], last, thresholdC, live, liveTs }
  var incidents = new Map(); // id -> incident
  var charts = new Map(); // sensorId -> { plot, title }

  var INCIDENT_FIELDS =
    'id sensorId status openedAt updatedAt clearedAt thresholdC peakC lastC criticalReadings location { lat lon } acknowledgedBy note';

  // ---- incidents: a first page, then live changes
  var wsClient;
  var unsubscribe;
  function startIncidents() {
    return gql('query { alertsCursor incidents(first: 50) { nodes { ' + INCIDENT_FIELDS + ' } } }').then(function (d) {
      incidents.clear();
      d.incidents.nodes.forEach(function (i) {
        incidents.set(i.id, i);
      });
      renderIncidents();
      var cursor = d.alertsCursor;
      var wsUrl = new URL(config.endpoint, location.href);
      wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
      wsClient = graphqlWs.createClient({
        url: wsUrl.href,
        connectionParams: function () {
          return credential ? { authorization: 'Bearer ' + credential } : {};
        },
        retryAttempts: Infinity,
        shouldRetry: function () {
          return true;
        },
      });
      var subscribe = function () {
        unsubscribe = wsClient.subscribe(
          {
            query:
              'subscription ($after: String) { incidentUpdates(after: $after) { change cursor incident { ' +
              INCIDENT_FIELDS +
              ' } } }',
            variables: { after: cursor },
          },
          {
            next: function (msg) {
              if (!msg.data) return;
              var u = msg.data.incidentUpdates;
              cursor = u.cursor; // resume from here after any interruption
              incidents.set(u.incident.id, u.incident);
              renderIncidents();
              renderMap();
            },
            error: function () {
              setTimeout(subscribe, 1000);
            },
            complete: function () {
              setTimeout(subscribe, 1000);
            },
          },
        );
      };
      subscribe();
    });
  }

  // ---- live points: readingUpdates for the sensors whose lines are drawn, on the same socket
  var liveIds = '';
  var liveUnsubscribe;
  function followLive(ids) {
    var key = ids.slice().sort().join(',');
    if (!wsClient || key === liveIds) return;
    stopLive();
    liveIds = key;
    if (ids.length === 0) return;
    var subscribe = function () {
      if (liveIds !== key) return; // followed other sensors since
      liveUnsubscribe = wsClient.subscribe(
        {
          query:
            'subscription ($ids: [ID!], $rate: Int) { readingUpdates(sensorIds: $ids, maxPerSecond: $rate) { sensorId ts temperature location { lat lon } } }',
          variables: { ids: ids, rate: LIVE_PER_SECOND },
        },
        {
          next: function (msg) {
            if (msg.data) addLivePoint(msg.data.readingUpdates);
          },
          error: function () {
            setTimeout(subscribe, 1000);
          },
          complete: function () {
            setTimeout(subscribe, 1000);
          },
        },
      );
    };
    subscribe();
  }

  function stopLive() {
    liveIds = '';
    if (liveUnsubscribe) liveUnsubscribe();
    liveUnsubscribe = undefined;
  }

  function addLivePoint(u) {
    var s = sensors.get(u.sensorId);
    if (!s) return;
    var t = Date.parse(u.ts) / 1000;
    var times = s.points[0];
    if (times.length > 0 && t <= times[times.length - 1]) return; // history has it already
    times.push(t);
    s.points[1].push(u.temperature);
    if (times.length > WINDOW) {
      times.splice(0, times.length - WINDOW);
      s.points[1].splice(0, s.points[1].length - WINDOW);
    }
    s.last = u.temperature;
    s.lat = u.location.lat;
    s.lon = u.location.lon;
    s.live = (s.live || 0) + 1;
    s.liveTs = u.ts;
    scheduleRender();
  }

  var renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    setTimeout(function () {
      renderPending = false;
      renderCharts();
    }, LIVE_RENDER_MS);
  }

  function acknowledge(id, button) {
    button.disabled = true;
    gql('mutation ($id: ID!) { acknowledgeIncident(id: $id) { ' + INCIDENT_FIELDS + ' } }', { id: id })
      .then(function (d) {
        incidents.set(id, d.acknowledgeIncident);
        renderIncidents();
      })
      .catch(function (err) {
        button.disabled = false;
        setStatus(err.message, true);
      });
  }

  function fmtTime(iso) {
    return iso ? new Date(iso).toLocaleTimeString() : '';
  }

  function renderIncidents() {
    var body = document.getElementById('incident-rows');
    var list = Array.from(incidents.values()).sort(function (a, b) {
      return b.openedAt < a.openedAt ? -1 : b.openedAt > a.openedAt ? 1 : 0;
    });
    body.textContent = '';
    if (list.length === 0) {
      var tr0 = document.createElement('tr');
      tr0.innerHTML = '<td colspan="7" class="empty">No incidents.</td>';
      body.appendChild(tr0);
      return;
    }
    list.slice(0, 50).forEach(function (i) {
      var tr = document.createElement('tr');
      tr.dataset.incident = i.id;
      var cells = [
        i.sensorId,
        null,
        fmtTime(i.openedAt),
        i.peakC.toFixed(1) + ' °C',
        i.lastC.toFixed(1) + ' °C',
        String(i.criticalReadings),
        null,
      ];
      cells.forEach(function (text, k) {
        var td = document.createElement('td');
        if (k === 1) {
          var badge = document.createElement('span');
          badge.className = 'badge ' + i.status;
          badge.textContent = i.status;
          td.appendChild(badge);
        } else if (k === 6) {
          if (i.acknowledgedBy) td.textContent = 'by ' + i.acknowledgedBy;
          else {
            var b = document.createElement('button');
            b.textContent = 'Acknowledge';
            b.dataset.ack = i.id;
            b.addEventListener('click', function () {
              acknowledge(i.id, b);
            });
            td.appendChild(b);
          }
        } else td.textContent = text;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  // ---- sensors: the running fleet and their latest readings, refreshed every REFRESH_MS
  function refreshSensors() {
    return gql('query { sensors(status: RUNNING, first: 50) { nodes { id scenario } } }')
      .then(function (d) {
        var ids = d.sensors.nodes.map(function (s) {
          return s.id;
        });
        // Sensors with running incidents are shown too (devices pushing readings have no fleet entry).
        incidents.forEach(function (i) {
          if (i.status !== 'CLEARED' && ids.indexOf(i.sensorId) < 0) ids.push(i.sensorId);
        });
        d.sensors.nodes.forEach(function (s) {
          if (!sensors.has(s.id)) sensors.set(s.id, { id: s.id, scenario: s.scenario, points: [[], []] });
        });
        ids.forEach(function (id) {
          if (!sensors.has(id)) sensors.set(id, { id: id, scenario: 'DEVICE', points: [[], []] });
        });
        sensors.forEach(function (_, id) {
          if (ids.indexOf(id) < 0) sensors.delete(id);
        });
        var drawn = ids.slice(0, MAX_CHARTS * 2);
        followLive(drawn);
        return loadReadings(drawn);
      })
      .then(function () {
        setStatus('live · ' + sensors.size + ' sensors · ' + new Date().toLocaleTimeString(), false);
        renderMap();
        renderCharts();
      })
      .catch(function (err) {
        setStatus(err.message, true);
      });
  }

  // One request per 10 sensors: their latest readings and limits, by aliases.
  function loadReadings(ids) {
    var chunks = [];
    for (var k = 0; k < ids.length; k += 10) chunks.push(ids.slice(k, k + 10));
    return Promise.all(
      chunks.map(function (chunk) {
        var vars = {};
        var defs = [];
        var fields = chunk.map(function (id, n) {
          vars['s' + n] = id;
          defs.push('$s' + n + ': ID!');
          return (
            'r' +
            n +
            ': readings(sensorId: $s' +
            n +
            ', first: ' +
            WINDOW +
            ') { nodes { ts temperature location { lat lon } } }'
          );
        });
        vars.ids = chunk;
        defs.push('$ids: [ID!]!');
        var query =
          'query (' +
          defs.join(', ') +
          ') { ' +
          fields.join(' ') +
          ' sensorThresholds(sensorIds: $ids) { sensorId thresholdC } }';
        return gql(query, vars).then(function (d) {
          chunk.forEach(function (id, n) {
            var s = sensors.get(id);
            if (!s) return;
            var nodes = d['r' + n].nodes.slice().reverse();
            var times = nodes.map(function (r) {
              return Date.parse(r.ts) / 1000;
            });
            var values = nodes.map(function (r) {
              return r.temperature;
            });
            // History is a few seconds behind: the live points past its newest stay on the line.
            var newest = times.length ? times[times.length - 1] : -Infinity;
            s.points[0].forEach(function (t, k) {
              if (t > newest) {
                times.push(t);
                values.push(s.points[1][k]);
              }
            });
            var from = Math.max(0, times.length - WINDOW);
            s.points = [times.slice(from), values.slice(from)];
            var last = nodes[nodes.length - 1];
            // The value shown is the newest, live or stored.
            if (last && !(s.liveTs && Date.parse(s.liveTs) > Date.parse(last.ts))) {
              s.last = last.temperature;
              s.lat = last.location.lat;
              s.lon = last.location.lon;
            }
          });
          d.sensorThresholds.forEach(function (t) {
            var s = sensors.get(t.sensorId);
            if (s) s.thresholdC = t.thresholdC;
          });
        });
      }),
    );
  }

  function runningIncidentOf(sensorId) {
    var found = null;
    incidents.forEach(function (i) {
      if (i.sensorId === sensorId && i.status !== 'CLEARED') found = i;
    });
    return found;
  }

  // ---- the map: sensor coordinates scaled into an SVG, no tiles
  function renderMap() {
    var svg = document.getElementById('map-svg');
    var placed = Array.from(sensors.values()).filter(function (s) {
      return typeof s.lat === 'number';
    });
    svg.textContent = '';
    var W = 600;
    var H = 320;
    var PAD = 30;
    if (placed.length === 0) return;
    var lats = placed.map(function (s) {
      return s.lat;
    });
    var lons = placed.map(function (s) {
      return s.lon;
    });
    // Centred on the fleet, one scale for both axes (degrees of longitude shrink with latitude).
    var midLat = (Math.min.apply(null, lats) + Math.max.apply(null, lats)) / 2;
    var midLon = (Math.min.apply(null, lons) + Math.max.apply(null, lons)) / 2;
    var squash = Math.cos((midLat * Math.PI) / 180);
    var spanLat = Math.max(Math.max.apply(null, lats) - Math.min.apply(null, lats), 0.02);
    var spanLon = Math.max(Math.max.apply(null, lons) - Math.min.apply(null, lons), 0.02) * squash;
    var scale = Math.min((W - 2 * PAD) / spanLon, (H - 2 * PAD) / spanLat);
    var NS = 'http://www.w3.org/2000/svg';
    var spots = spread(
      placed.map(function (s) {
        return { s: s, x: W / 2 + (s.lon - midLon) * squash * scale, y: H / 2 - (s.lat - midLat) * scale };
      }),
    );
    spots.forEach(function (p) {
      var s = p.s;
      if (p.fromX !== undefined) {
        // Moved off a shared spot: a thin line back to where it is.
        var tie = document.createElementNS(NS, 'line');
        tie.setAttribute('x1', p.fromX.toFixed(1));
        tie.setAttribute('y1', p.fromY.toFixed(1));
        tie.setAttribute('x2', p.x.toFixed(1));
        tie.setAttribute('y2', p.y.toFixed(1));
        tie.setAttribute('class', 'tie');
        svg.appendChild(tie);
      }
      var incident = runningIncidentOf(s.id);
      var c = document.createElementNS(NS, 'circle');
      c.setAttribute('cx', p.x.toFixed(1));
      c.setAttribute('cy', p.y.toFixed(1));
      c.setAttribute('r', incident ? '9' : '6');
      c.setAttribute('fill', incident ? (incident.status === 'OPEN' ? '#f85149' : '#d29922') : '#3fb950');
      c.dataset.sensor = s.id;
      var title = document.createElementNS(NS, 'title');
      title.textContent = s.id + (typeof s.last === 'number' ? ' · ' + s.last.toFixed(1) + ' °C' : '');
      c.appendChild(title);
      svg.appendChild(c);
      var label = document.createElementNS(NS, 'text');
      var left = p.labelLeft === true;
      label.setAttribute('x', (p.x + (left ? -12 : 12)).toFixed(1));
      label.setAttribute('y', (p.y + 4).toFixed(1));
      if (left) label.setAttribute('text-anchor', 'end');
      label.dataset.sensor = s.id;
      label.textContent = s.id.length > 18 ? s.id.slice(0, 17) + '…' : s.id;
      svg.appendChild(label);
    });
  }

  // Sensors closer than SPOT px on the map (the same place, or nearly) would hide each other and
  // their labels: each such group is laid out in a column centred on its spot, ROW px apart (a
  // label is about 14 px high), labels to the right, or to the left on the map's right half.
  var SPOT = 14;
  var ROW = 18;
  function spread(points) {
    var groups = [];
    points.forEach(function (p) {
      var group = groups.find(function (g) {
        return Math.abs(g.x - p.x) < SPOT && Math.abs(g.y - p.y) < SPOT;
      });
      if (group) group.members.push(p);
      else groups.push({ x: p.x, y: p.y, members: [p] });
    });
    var out = [];
    groups.forEach(function (g) {
      if (g.members.length === 1) {
        out.push(g.members[0]);
        return;
      }
      g.members.sort(function (a, b) {
        return a.s.id < b.s.id ? -1 : a.s.id > b.s.id ? 1 : 0;
      });
      var n = g.members.length;
      var row = Math.min(ROW, (320 - 24) / (n - 1)); // a crowd of them still fits the map's height
      var top = Math.max(12, Math.min(320 - 12 - (n - 1) * row, g.y - ((n - 1) * row) / 2));
      var dx = g.x > 300 ? -14 : 14;
      g.members.forEach(function (p, k) {
        out.push({ s: p.s, x: g.x + dx, y: top + k * row, fromX: g.x, fromY: g.y, labelLeft: dx < 0 });
      });
    });
    return out;
  }

  // ---- live lines: one uPlot chart per sensor (hot ones first)
  function renderCharts() {
    var host = document.getElementById('charts');
    var shown = Array.from(sensors.values())
      .filter(function (s) {
        return s.points[0].length > 1;
      })
      .sort(function (a, b) {
        return (runningIncidentOf(b.id) ? 1 : 0) - (runningIncidentOf(a.id) ? 1 : 0);
      })
      .slice(0, MAX_CHARTS);
    var keep = new Set(
      shown.map(function (s) {
        return s.id;
      }),
    );
    charts.forEach(function (chart, id) {
      if (!keep.has(id)) {
        chart.plot.destroy();
        chart.box.remove();
        charts.delete(id);
      }
    });
    shown.forEach(function (s) {
      var threshold = typeof s.thresholdC === 'number' ? s.thresholdC : null;
      var data = [
        s.points[0],
        s.points[1],
        s.points[0].map(function () {
          return threshold;
        }),
      ];
      var chart = charts.get(s.id);
      if (!chart) {
        var box = document.createElement('div');
        box.className = 'chart';
        var h = document.createElement('h3');
        box.appendChild(h);
        host.appendChild(box);
        var plot = new uPlot(
          {
            width: 300,
            height: 140,
            scales: { x: { time: true } },
            axes: [
              { stroke: '#8b98a5', grid: { stroke: '#2d3a46' } },
              { stroke: '#8b98a5', grid: { stroke: '#2d3a46' } },
            ],
            series: [
              {},
              { label: '°C', stroke: '#58a6ff', width: 1.5 },
              { label: 'threshold', stroke: '#f85149', width: 1, dash: [4, 4] },
            ],
          },
          data,
          box,
        );
        chart = { plot: plot, box: box, title: h };
        charts.set(s.id, chart);
      } else chart.plot.setData(data);
      host.appendChild(chart.box); // in display order: hot sensors first
      // For tests and curious operators: points on the line, and how many came live.
      chart.box.dataset.sensor = s.id;
      chart.box.dataset.points = String(s.points[0].length);
      chart.box.dataset.livePoints = String(s.live || 0);
      if (s.liveTs) chart.box.dataset.liveTs = s.liveTs;
      chart.title.textContent = s.id + ' ';
      var now = document.createElement('span');
      now.className = 'now';
      now.textContent = typeof s.last === 'number' ? s.last.toFixed(1) + ' °C' : '';
      chart.title.appendChild(now);
    });
    document.getElementById('charts-empty').style.display = shown.length ? 'none' : '';
  }

  var timer;
  function restart() {
    clearInterval(timer);
    stopLive();
    if (unsubscribe) unsubscribe();
    if (wsClient) wsClient.dispose();
    unsubscribe = undefined;
    wsClient = undefined;
    if (!canAsk()) {
      setStatus('enter a credential to start', false);
      document.body.classList.add('needs-credential');
      keyInput.focus();
      return;
    }
    document.body.classList.remove('needs-credential');
    startIncidents()
      .catch(function (err) {
        setStatus(err.message, true);
      })
      .then(function () {
        refreshSensors();
        timer = setInterval(refreshSensors, REFRESH_MS);
      });
  }
  restart();
})();
