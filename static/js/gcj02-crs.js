/* L.CRS.GCJ02: Web Mercator over GCJ-02, for basemaps published in China's GCJ-02 datum (AMap, Tencent,
   many intranet tile servers). Loaded as a classic script after Leaflet and before the map is made
   (geo/folium_offline.py `new_map` asks for it when BASEMAP_DATUM=gcj02).

   The one edge where WGS-84 meets a GCJ-02 basemap in the browser: every layer is given WGS-84 latlngs and
   the projection shifts them onto the basemap (markers, GeoJSON, heat, clusters, fitBounds); every point the
   map hands back (a click's e.latlng, a dragged pin, getBounds() for a viewport query) is unprojected through
   the iterative inverse, so it is WGS-84 again. Vector tiles are drawn in tile pixels, past the projection:
   their endpoint shifts them (geo/selectors.py `tile_datum_shift`, `?datum=gcj02`).

   The formulas are geo/coords.py's (`wgs84_to_gcj02`, `gcj02_to_wgs84`: forward offset, outside-China
   identity, fixed-point inverse to 1e-10°); tests/e2e/test_wall.py checks both agree. */
(function () {
  "use strict";
  if (!window.L || L.CRS.GCJ02) return;
  const A = 6378245.0; // Krasovsky 1940 semi-major axis, as GCJ-02 uses it
  const EE = 0.00669342162296594323;
  const PI = Math.PI;

  function outsideChina(lon, lat) {
    return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
  }
  function forward(lon, lat) {
    if (outsideChina(lon, lat)) return [lon, lat];
    const x = lon - 105.0;
    const y = lat - 35.0;
    let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    dlat += ((20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0) / 3.0;
    dlat += ((20.0 * Math.sin(y * PI) + 40.0 * Math.sin((y / 3.0) * PI)) * 2.0) / 3.0;
    dlat += ((160.0 * Math.sin((y / 12.0) * PI) + 320.0 * Math.sin((y * PI) / 30.0)) * 2.0) / 3.0;
    let dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    dlon += ((20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0) / 3.0;
    dlon += ((20.0 * Math.sin(x * PI) + 40.0 * Math.sin((x / 3.0) * PI)) * 2.0) / 3.0;
    dlon += ((150.0 * Math.sin((x / 12.0) * PI) + 300.0 * Math.sin((x / 30.0) * PI)) * 2.0) / 3.0;
    const radlat = (lat / 180.0) * PI;
    const magic = 1 - EE * Math.sin(radlat) ** 2;
    const sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / (((A * (1 - EE)) / (magic * sqrtmagic)) * PI);
    dlon = (dlon * 180.0) / ((A / sqrtmagic) * Math.cos(radlat) * PI);
    return [lon + dlon, lat + dlat];
  }
  // x ← x − (forward(x) − target), from the target itself: < 1 mm in ~3 steps (the one-step inverse is off 1–2 m).
  function inverse(glon, glat) {
    let lon = glon;
    let lat = glat;
    for (let i = 0; i < 30; i++) {
      const [flon, flat] = forward(lon, lat);
      const elon = flon - glon;
      const elat = flat - glat;
      lon -= elon;
      lat -= elat;
      if (Math.abs(elon) < 1e-10 && Math.abs(elat) < 1e-10) break;
    }
    return [lon, lat];
  }

  const merc = L.Projection.SphericalMercator;
  const projection = {
    R: merc.R,
    MAX_LATITUDE: merc.MAX_LATITUDE,
    bounds: merc.bounds,
    project(latlng) {
      const [lon, lat] = forward(latlng.lng, latlng.lat);
      return merc.project(L.latLng(lat, lon));
    },
    unproject(point) {
      const g = merc.unproject(point);
      const [lon, lat] = inverse(g.lng, g.lat);
      return L.latLng(lat, lon);
    },
  };
  L.CRS.GCJ02 = L.Util.extend({}, L.CRS.EPSG3857, { code: "GCJ02", projection });
  // For tests and for anyone checking a point by hand: [lon, lat] in, [lon, lat] out.
  L.CRS.GCJ02.wgs84ToGcj02 = forward;
  L.CRS.GCJ02.gcj02ToWgs84 = inverse;
})();
